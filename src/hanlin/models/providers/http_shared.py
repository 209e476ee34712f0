"""HTTP details every remote provider shares: ``Retry-After``, bodies that are not JSON, and
finishing a stream so its connection goes back to the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from hanlin.models.errors import UpstreamUnavailableError


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def malformed(provider: str, raw: str | bytes) -> UpstreamUnavailableError:
    """The error for a body or stream event that is not JSON (often a proxy's error page)."""
    snippet = raw[:80] if isinstance(raw, str) else raw[:80].decode("utf-8", "replace")
    return UpstreamUnavailableError(
        f"{provider} sent malformed JSON: {snippet!r}",
        hint="the upstream (or a proxy in front of it) is misbehaving; check the base URL, "
        "retry or fail over",
        provider=provider,
    )


async def drain(lines: AsyncIterator[str], limit: int = 64) -> None:
    """Read what is left of a finished stream (its chunked-encoding terminator, at most a few
    lines), so the connection goes back to the pool instead of being closed."""
    for _ in range(limit):
        try:
            await anext(lines)
        except StopAsyncIteration:
            return
