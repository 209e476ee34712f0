"""Network helpers shared by every part of Hanlin that fetches what users name (URLs)."""

from __future__ import annotations

from hanlin.net.ssrf import (
    BlockedURLError,
    FetchedURL,
    FetchError,
    blocked_reason,
    check_url,
    safe_fetch,
)

__all__ = [
    "BlockedURLError",
    "FetchError",
    "FetchedURL",
    "blocked_reason",
    "check_url",
    "safe_fetch",
]
