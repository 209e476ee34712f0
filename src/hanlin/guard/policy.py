"""Whether a model call gets masked, and what: the ``[guard]`` settings applied to one
deployment, route, API key and knowledge base.

``mask_pii = "remote"`` (the default) masks for remote endpoints only. An endpoint is local when
it runs in this process (the bundled GGUF models, local embedders) or its base URL is loopback,
private or link-local (Ollama, vLLM, a server in the office network); ``guard.local_endpoints``
and ``guard.remote_endpoints`` say otherwise for named endpoints (a tunnel, a proxy). The most
specific setting wins: API key, then knowledge base, then ``endpoint/model``, endpoint, route,
then ``[guard]`` itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlsplit

from hanlin.config import GuardRule, GuardSettings
from hanlin.guard.detect import Detector, detector

#: providers that run the model inside this process
IN_PROCESS_PROVIDERS = frozenset({"llamacpp", "local_embed"})

_kb: ContextVar[str | None] = ContextVar("hanlin_guard_kb", default=None)
_facing: ContextVar[bool] = ContextVar("hanlin_guard_user_facing", default=False)


@contextmanager
def kb_scope(name: str | None) -> Iterator[None]:
    """Model calls made inside answer from knowledge base ``name`` (its ``guard.kbs`` rule
    applies); RAG answers run inside one."""
    token = _kb.set(name)
    try:
        yield
    finally:
        _kb.reset(token)


def current_kb() -> str | None:
    return _kb.get()


@contextmanager
def user_facing() -> Iterator[None]:
    """Model calls made inside write answers a person reads (a RAG answer, an agent's step,
    ``/v1/chat/completions``): their links and images to hosts outside
    ``guard.allowed_link_hosts`` are neutralised. Calls whose output code reads (a plan, a
    rewritten question, a workflow node) keep their links."""
    token = _facing.set(True)
    try:
        yield
    finally:
        _facing.reset(token)


def is_user_facing() -> bool:
    return _facing.get()


def injection_mode(
    settings: GuardSettings, *, kb: str | None = None, key: str | None = None
) -> str:
    """What to do with injection found in retrieved chunks or tool results: the API key's
    rule, then the knowledge base's (default: the one :func:`kb_scope` set), then ``[guard]``."""
    kb = kb if kb is not None else current_kb()
    mode: str = settings.injection
    for rule in (settings.kbs.get(kb) if kb else None, settings.keys.get(key) if key else None):
        if rule is not None and rule.injection is not None:
            mode = rule.injection
    return mode


@dataclass(frozen=True, slots=True)
class Target:
    """Where a call goes: what the policy looks at."""

    endpoint: str
    provider: str
    base_url: str
    model: str
    route: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one call: mask or not, with which detector, and why."""

    mask: bool
    local: bool
    mode: str
    detector: Detector | None = None


def is_local(target: Target, settings: GuardSettings) -> bool:
    """In this process, or at a loopback / private / link-local address (or listed local)."""
    if target.endpoint in settings.remote_endpoints:
        return False
    if target.endpoint in settings.local_endpoints:
        return True
    if target.provider in IN_PROCESS_PROVIDERS or not target.base_url:
        return True
    host = (urlsplit(target.base_url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: where it resolves may change; list it in local_endpoints
    return ip.is_loopback or ip.is_private or ip.is_link_local


def decide(
    settings: GuardSettings, target: Target, *, key: str | None = None, kb: str | None = None
) -> Decision:
    """The decision for a call to ``target`` by API key ``key`` (knowledge base ``kb``;
    default: the one :func:`kb_scope` set)."""
    kb = kb if kb is not None else current_kb()
    rules: list[GuardRule | None] = [
        settings.routes.get(target.route) if target.route else None,
        settings.routes.get(target.endpoint),
        settings.routes.get(f"{target.endpoint}/{target.model}"),
        settings.kbs.get(kb) if kb else None,
        settings.keys.get(key) if key else None,
    ]
    mode: str = settings.mask_pii
    entities: list[str] = settings.entities
    for rule in rules:
        if rule is not None:
            mode = rule.mask_pii or mode
            entities = rule.entities if rule.entities is not None else entities
    local = is_local(target, settings)
    mask = mode == "always" or (mode == "remote" and not local)
    found = detector(tuple(settings.recognizers), tuple(entities)) if mask else None
    return Decision(mask, local, mode, found)


def ingest_detector(settings: GuardSettings, kb: str | None = None) -> Detector:
    """The detector that masks documents at ingest: ``[guard]``'s recognizers, and the entity
    types of ``guard.kbs.<kb>`` or ``[guard]``."""
    rule = settings.kbs.get(kb) if kb else None
    entities = rule.entities if rule is not None and rule.entities is not None else None
    return detector(
        tuple(settings.recognizers), tuple(settings.entities if entities is None else entities)
    )


def content_detector(
    settings: GuardSettings, *, kb: str | None = None, key: str | None = None
) -> Detector | None:
    """What masks text recorded where no model call decides — a knowledge-base search outside
    a masked answer or agent run: the mode in force for knowledge base ``kb`` (default: the one
    :func:`kb_scope` set) and API key ``key``. Only ``always`` masks: nothing leaves the
    process, so ``remote`` does not. None: recorded as it is."""
    kb = kb if kb is not None else current_kb()
    mode: str = settings.mask_pii
    entities: list[str] = settings.entities
    for rule in (settings.kbs.get(kb) if kb else None, settings.keys.get(key) if key else None):
        if rule is not None:
            mode = rule.mask_pii or mode
            entities = rule.entities if rule.entities is not None else entities
    if mode != "always":
        return None
    return detector(tuple(settings.recognizers), tuple(entities))
