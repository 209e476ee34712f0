"""The guard model in the gateway (``guard.model``): a safety classifier served like any other
model (Llama Guard, Qwen3Guard on vLLM or Ollama) classifies a chat call's input before the call
and its answer after it; :mod:`hanlin.guard.classifier` reads its verdict and maps it to the
policy (``guard.model_categories``).

A ``block`` on the input answers with the refusal text (finish reason ``content_filter``)
without calling the model; on the answer it replaces the answer. When the guard model cannot
answer, ``guard.model_failure`` decides: ``closed`` raises
:class:`~hanlin.models.errors.GuardUnavailableError`, ``open`` lets the call through and records
``hanlin.guard.model.unavailable`` on the span. Unset, it is closed when the call is masked for
a remote model (the policy cares about that call) and open otherwise.

The classifier's own call is routed with retries like any call but is not classified itself,
and is masked when its deployment is remote, like any call.
"""

from __future__ import annotations

from typing import Any

from hanlin.errors import HanlinError
from hanlin.guard.classifier import Judgement, UnreadableVerdict, judge, parse
from hanlin.models import guarding
from hanlin.models.catalog import Deployment, Route
from hanlin.models.errors import GuardUnavailableError
from hanlin.models.types import ChatOptions, ChatResponse, Message

_OPTIONS = ChatOptions(temperature=0.0, max_tokens=64)


def _turns(msgs: list[Message], answer: str | None) -> list[Message]:
    """The user and assistant turns a classifier's chat template takes (no system prompt, no
    tool results), the answer to classify last."""
    out = [Message(m.role, m.text) for m in msgs if m.role in ("user", "assistant") and m.text]
    if answer is not None:
        out.append(Message.assistant(answer))
    return out


async def _classify(
    gw: Any, msgs: list[Message], key: str, guarded: guarding.CallGuard
) -> Judgement:
    settings = gw.settings.guard
    route = gw.resolve(settings.model)

    async def attempt(dep: Deployment) -> ChatResponse:
        _, sent = guarding.guard_messages(
            settings, dep, route.name, key, guarded.kb, msgs, guarding.CallGuard(guarded.kb)
        )
        resp: ChatResponse = await gw.provider(dep).complete(dep.model, sent, _OPTIONS)
        return resp

    _, resp = await gw.router.call(route, attempt)
    return judge(parse(resp.text), settings.model_categories)


async def _screen(
    gw: Any,
    route: Route,
    msgs: list[Message],
    key: str,
    sp: Any,
    guarded: guarding.CallGuard,
    where: str,
) -> Judgement | None:
    """The judgement on ``msgs`` (None: no guard model, or it failed open)."""
    settings = gw.settings.guard
    if not settings.model:
        return None
    try:
        found = await _classify(gw, msgs, key, guarded)
    except (HanlinError, UnreadableVerdict) as exc:
        failure = settings.model_failure
        if failure is None:
            masked = guarding.masks_route(settings, route, key, guarded.kb)
            failure = "closed" if masked else "open"
        if failure == "closed":
            reason = exc.message if isinstance(exc, HanlinError) else str(exc)
            raise GuardUnavailableError(
                f"the guard model {settings.model} could not classify the {where}: {reason}",
                hint=f"start {settings.model} (`hanlin models test {settings.model}`), or set "
                'guard.model_failure = "open" to let calls through unchecked while it is down',
                provider=settings.model,
            ) from None
        guarded.unchecked = True
        sp.set_attribute("hanlin.guard.model.unavailable", True)
        return None
    sp.set_attribute(f"hanlin.guard.model.{where}", found.action)
    if found.action == "flag":
        guarded.flags.extend(found.rules)
    if found.action != "allow":
        for rule in found.rules:
            sp.add_event(f"hanlin.guard.{found.action}", {"hanlin.guard.rule": rule})
    return found


async def screen_input(
    gw: Any, route: Route, msgs: list[Message], key: str, sp: Any, guarded: guarding.CallGuard
) -> ChatResponse | None:
    """The refusal when the guard model blocks the input (the model is then not called)."""
    found = await _screen(gw, route, _turns(msgs, None), key, sp, guarded, "input")
    if found is None or found.action != "block":
        return None
    guarded.blocked = found.rule
    sp.set_attribute("hanlin.guard.blocked", True)
    resp = ChatResponse(gw.settings.guard.refusal_text, route.name, finish_reason="content_filter")
    resp.guard = guarded.notice()
    return resp


async def screen_output(
    gw: Any,
    route: Route,
    msgs: list[Message],
    resp: ChatResponse,
    key: str,
    sp: Any,
    guarded: guarding.CallGuard,
) -> None:
    """The answer classified; a block replaces it by the refusal text, in place."""
    if not gw.settings.guard.model or guarded.blocked or not (resp.text or resp.tool_calls):
        return
    found = await _screen(gw, route, _turns(msgs, resp.text), key, sp, guarded, "output")
    if found is not None and found.action == "block":
        resp.text = gw.settings.guard.refusal_text
        resp.tool_calls = []
        resp.finish_reason = "content_filter"
        guarded.blocked = found.rule
        sp.set_attribute("hanlin.guard.blocked", True)
