"""The committed OpenAPI spec is the app's, and no generated request gets a 5xx (schemathesis)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from hanlin.config import Settings
from hanlin.net import ssrf
from hanlin.server.app import create_app
from hanlin.server.openapi import render
from tests.server.conftest import MODEL, build_kb

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_spec_matches_the_app() -> None:
    assert SPEC.read_text("utf-8") == render(), (
        "docs/openapi.json is stale: run `python -m hanlin.server.openapi > docs/openapi.json`"
    )


@pytest.mark.slow
def test_no_server_errors_on_generated_requests(
    fresh_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid and invalid requests for every operation, also against an existing knowledge base
    (bounded: ~10 examples per operation and mode, well under a minute): all get < 500."""
    # generated URLs must not cause DNS lookups: every name "resolves" to a refused address
    monkeypatch.setattr(ssrf, "_system_resolver", lambda host, port: ["10.0.0.1"])
    app_settings = fresh_settings()
    # a request without a model (a prompt run, a chat) gets the fake upstream's quick one: the
    # bundled local model takes seconds per call on two shared cores, past the client timeout
    app_settings.models.default = MODEL
    build_kb(app_settings, "fuzz").close()
    loaded = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    schema = loaded.exclude(path_regex=r".*/events$")  # an endless SSE stream
    failures: list[str] = []
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the spec is valid (test above)
        targets: list[dict[str, Any] | None] = [None]
        if "{name}" in operation.path and operation.label != "DELETE /api/kb/{name}":
            targets.append({"name": "fuzz"})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in targets:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters
                )

                @given(case=strategy)
                @hypothesis_settings(
                    max_examples=10,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                    derandomize=True,
                )
                def run(case: Any) -> None:
                    response = case.call()
                    seen[response.status_code] += 1
                    if response.status_code >= 500:
                        failures.append(
                            f"{case.method} {case.formatted_path} {case.body!r:.200} → "
                            f"{response.status_code}: {response.text[:300]}"
                        )

                try:
                    run()
                except Unsatisfiable:  # nothing to make invalid (an operation without input)
                    assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:10])
    assert seen[200] + seen[202] > 50 and sum(seen.values()) > 500  # the fuzzing got through
