"""Routing: order the deployments of a route, retry with backoff, fail over, stream safely.

- Strategies: ``fallback`` (in order), ``round_robin`` (rotate the first choice each call),
  ``least_busy`` (fewest calls in flight first). Deployments that failed recently (cooldown) go
  last whatever the strategy.
- A retryable error (rate limit, 5xx, timeout, broken connection) is retried on the same
  deployment with exponential backoff and jitter, waiting exactly ``Retry-After`` when the
  provider sends it; a ``Retry-After`` longer than ``max_retry_after`` fails over at once.
- Auth errors, missing keys, context overflow, unsupported features and a busy deployment (a
  full local queue) fail over without retrying (another deployment may have a key, a longer
  context or room); other bad requests are raised at once — a different provider would refuse
  them too.
- A stream fails over only before its first token; after that the error reaches the caller.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hanlin.config import ModelsSettings
from hanlin.models.catalog import Deployment, Route
from hanlin.models.errors import (
    AuthenticationError,
    ContextTooLongError,
    ModelBusyError,
    ModelError,
    UnsupportedFeatureError,
)
from hanlin.models.types import StreamEvent, TextDelta, ToolCallDelta

T = TypeVar("T")
_FAILOVER = (AuthenticationError, ContextTooLongError, UnsupportedFeatureError, ModelBusyError)


@dataclass(slots=True)
class _State:
    inflight: int = 0
    cooldown_until: float = 0.0


class Router:
    """Per-deployment state (in-flight counts, cooldowns) and the retry/failover loop."""

    def __init__(self, settings: ModelsSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._state: dict[str, _State] = {}
        self._turn = itertools.count()
        self._rng = rng or random.Random()
        #: (deployment label, error) for every failed attempt, newest last; bounded.
        self.failures: list[tuple[str, ModelError]] = []

    def state(self, dep: Deployment) -> _State:
        st = self._state.get(dep.label)
        if st is None:
            st = self._state[dep.label] = _State()
        return st

    def order(self, route: Route) -> list[Deployment]:
        deps = list(route.deployments)
        if len(deps) == 1:
            return deps
        if route.strategy == "round_robin":
            k = next(self._turn) % len(deps)
            deps = deps[k:] + deps[:k]
        elif route.strategy == "least_busy":
            k = next(self._turn)
            rank = {d.label: (i - k) % len(deps) for i, d in enumerate(deps)}
            deps.sort(key=lambda d: (self.state(d).inflight, rank[d.label]))
        now = time.monotonic()
        return sorted(deps, key=lambda d: self.state(d).cooldown_until > now)  # stable

    def backoff(self, attempt: int, error: ModelError) -> float | None:
        """Seconds to wait before retrying, or None to fail over now."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.settings.max_retry_after:
                return None
            return float(retry_after) + self._rng.uniform(0, 0.1)
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _note(self, dep: Deployment, error: ModelError) -> None:
        self.failures.append((dep.label, error))
        del self.failures[:-100]
        if error.retryable:
            self.state(dep).cooldown_until = time.monotonic() + self.settings.cooldown

    def _give_up(self, route: Route, errors: list[ModelError]) -> ModelError:
        last = errors[-1]
        if len(route.deployments) == 1 and len(errors) == 1:
            return last
        tried = len({e.provider for e in errors}) or 1
        err = type(last)(
            f"{last.message} (after {len(errors)} attempts on {tried} deployment(s) of "
            f"'{route.name}')",
            hint=last.hint,
            provider=last.provider,
            status=last.status,
        )
        err.__cause__ = last
        return err

    async def call(
        self, route: Route, fn: Callable[[Deployment], Awaitable[T]]
    ) -> tuple[Deployment, T]:
        """Run ``fn`` on the route's deployments until one succeeds."""
        errors: list[ModelError] = []
        for dep in self.order(route):
            st = self.state(dep)
            for attempt in range(self.settings.retries + 1):
                st.inflight += 1
                try:
                    return dep, await fn(dep)
                except ModelError as exc:
                    errors.append(exc)
                    self._note(dep, exc)
                    wait = self._after_error(exc, attempt)
                    if wait == "raise":
                        raise
                    if wait is None:
                        break
                finally:
                    st.inflight -= 1
                assert isinstance(wait, float)
                await asyncio.sleep(wait)
        raise self._give_up(route, errors)

    def _after_error(self, exc: ModelError, attempt: int) -> float | str | None:
        """ "raise", None (next deployment) or seconds to wait before retrying here."""
        if exc.retryable:
            if attempt >= self.settings.retries:
                return None
            return self.backoff(attempt, exc)
        if isinstance(exc, _FAILOVER):
            return None
        return "raise"

    async def stream(
        self,
        route: Route,
        open_stream: Callable[[Deployment], AsyncIterator[StreamEvent]],
        on_start: Callable[[Deployment], None],
    ) -> AsyncIterator[StreamEvent]:
        """Stream from the first deployment that produces a token; fail over only before it."""
        errors: list[ModelError] = []
        for dep in self.order(route):
            st = self.state(dep)
            for attempt in range(self.settings.retries + 1):
                started = False
                wait: float | str | None = None
                st.inflight += 1
                events = open_stream(dep)
                try:
                    async for event in events:
                        if not started and isinstance(event, TextDelta | ToolCallDelta):
                            started = True
                            on_start(dep)
                        yield event
                    if not started:
                        on_start(dep)
                    return
                except ModelError as exc:
                    if started:
                        raise
                    errors.append(exc)
                    self._note(dep, exc)
                    wait = self._after_error(exc, attempt)
                    if wait == "raise":
                        raise
                finally:
                    st.inflight -= 1
                    aclose = getattr(events, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if wait is None:
                    break
                assert isinstance(wait, float)
                await asyncio.sleep(wait)
        raise self._give_up(route, errors)
