"""The ``[guard]`` policy: which endpoints are local, and which setting wins."""

from __future__ import annotations

import pytest

from hanlin.config import GuardSettings
from hanlin.guard.policy import Target, decide, is_local, kb_scope


def _target(base_url: str = "https://api.deepseek.com/v1", **kw: str) -> Target:
    fields = {"endpoint": "deepseek", "provider": "openai_compat", "model": "deepseek-chat"}
    fields.update(kw)
    return Target(base_url=base_url, **fields)


@pytest.mark.parametrize(
    ("target", "local"),
    [
        (_target(), False),
        (_target("http://127.0.0.1:11434/v1", endpoint="ollama"), True),
        (_target("http://localhost:8000/v1"), True),
        (_target("http://10.0.0.5:8000/v1"), True),
        (_target("http://[::1]:8000/v1"), True),
        (_target("http://vllm.office.example/v1"), False),  # a name: say so in local_endpoints
        (_target("", endpoint="local", provider="llamacpp"), True),
    ],
)
def test_which_endpoints_are_local(target: Target, local: bool) -> None:
    assert is_local(target, GuardSettings()) is local


def test_named_endpoints_override_the_address() -> None:
    s = GuardSettings(local_endpoints=["deepseek"], remote_endpoints=["ollama"])
    assert is_local(_target(), s)
    assert not is_local(_target("http://127.0.0.1:11434/v1", endpoint="ollama"), s)


def test_the_default_masks_remote_calls_only() -> None:
    s = GuardSettings()
    assert decide(s, _target()).mask
    assert not decide(s, _target("http://127.0.0.1:1/v1")).mask


def test_the_most_specific_rule_wins() -> None:
    s = GuardSettings.model_validate(
        {
            "routes": {
                "chat": {"mask_pii": "never"},
                "deepseek": {"mask_pii": "always", "entities": ["PHONE"]},
                "deepseek/deepseek-chat": {"mask_pii": "never"},
            },
            "kbs": {"hr": {"mask_pii": "always"}},
            "keys": {"key_partner": {"mask_pii": "never"}},
        }
    )
    t = _target(route="chat")
    assert not decide(s, t).mask  # endpoint/model beats endpoint beats route
    assert decide(s, t, kb="hr").mask  # the knowledge base beats the model
    assert not decide(s, t, kb="hr", key="key_partner").mask  # the key beats everything
    found = decide(s, _target(model="deepseek-reasoner"))
    assert found.mask and found.detector is not None and found.detector.kinds == {"PHONE"}


def test_a_kb_scope_applies_its_rule_to_calls_inside_it() -> None:
    s = GuardSettings.model_validate({"mask_pii": "never", "kbs": {"hr": {"mask_pii": "always"}}})
    assert not decide(s, _target()).mask
    with kb_scope("hr"):
        assert decide(s, _target()).mask
    assert not decide(s, _target()).mask
