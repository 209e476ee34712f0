"""The span of a knowledge-base search (``search {kb}``, operation ``retrieve``): mode, k, the
query and the hits (sources and scores) when content is captured. The query is recorded masked
inside a masked RAG answer or agent run, and where the guard policy for the knowledge base or
the caller's API key is ``mask_pii = "always"``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from hanlin.access import caller as access
from hanlin.guard.policy import content_detector
from hanlin.tracing import spans
from hanlin.tracing.setup import capturing

P = ParamSpec("P")
R = TypeVar("R")


def traced_search(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def search(*args: P.args, **kwargs: P.kwargs) -> R:
        kb: Any = args[0]
        query = args[1] if len(args) > 1 else kwargs.get("query")
        attrs = {
            "hanlin.search.mode": kwargs.get("mode", "hybrid"),
            "hanlin.search.k": kwargs.get("k", 10),
        }
        with spans.span(f"search {kb.name}", operation="retrieve", kb=kb.name, attrs=attrs) as sp:
            if capturing() and sp.is_recording():
                guard = kb.settings.guard
                key = access.current().user
                spans.mask_content(sp, content_detector(guard, kb=kb.name, key=key))
            spans.record(sp, "hanlin.query", query)
            results: Any = fn(*args, **kwargs)
            sp.set_attribute("hanlin.search.results", len(results))
            spans.record(
                sp,
                "hanlin.search.hits",
                [{"source": r.chunk.source, "score": round(r.score, 4)} for r in results],
            )
            return results

    return search
