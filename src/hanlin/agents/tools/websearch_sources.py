"""Web search results as citable sources: read the top result pages through the SSRF guard and
the knowledge base's loaders, keep the passages most relevant to the query, number them
``[1]..[n]``, and turn them into RAG evidence so a RAG answer can cite web results."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from hanlin.agents.tools.websearch_providers import SearchHit
from hanlin.errors import HanlinError
from hanlin.rag.base import Citation, Evidence

MiB = 1 << 20


class PageOptions(BaseModel):
    """How result pages are read when ``fetch`` is on."""

    model_config = ConfigDict(extra="forbid")

    #: how many of the top results are read
    top_k: int = Field(default=3, ge=1, le=10)
    #: size and time limit per page (the SSRF guard enforces both, redirects included)
    max_bytes: int = Field(default=2 * MiB, ge=1024)
    timeout: float = Field(default=10.0, gt=0)
    #: passages quoted per page, and their size (tokens, as the chunker counts them)
    passages: int = Field(default=2, ge=1, le=5)
    passage_tokens: int = Field(default=160, ge=32, le=1000)
    #: let pages be private/loopback addresses (off: the SSRF guard refuses them)
    allow_private: bool = False
    #: hosts read even when they resolve to private addresses (an intranet wiki)
    allowed_hosts: list[str] = Field(default_factory=list)


@dataclass(slots=True)
class WebSource:
    """A citable web source: ``[n]`` in an answer points here.

    ``text`` is what the model should quote: the passages of the page most relevant to the
    query when the page was read (``fetched``), else the engine's snippet. ``note`` says why a
    page was not read. ``char_start`` / ``char_end`` span the passages in the page's extracted
    text (for a snippet: ``0`` and its length). ``score`` is how well the passages match the
    query (idf-weighted shared words; 0 for a snippet).
    """

    n: int
    title: str
    url: str
    text: str
    snippet: str
    engine: str
    rank: int
    published: str | None = None
    site: str | None = None
    fetched: bool = False
    note: str | None = None
    score: float = 0.0
    char_start: int = 0
    char_end: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "title": self.title,
            "url": self.url,
            "published": self.published,
            "site": self.site,
            "engine": self.engine,
            "text": self.text,
        }
        if self.note:
            data["note"] = self.note
        return {k: v for k, v in data.items() if v is not None}


# --- reading pages and picking passages -------------------------------------------------------


@dataclass(slots=True)
class _Page:
    hit: SearchHit
    chunks: list[tuple[int, int, str, list[str]]]  # start, end, text, tokens
    title: str | None = None
    note: str | None = None


def _page_name(url: str, content_type: str | None) -> str:
    """A file name for the loader registry: the URL's own when it has an extension."""
    name = PurePosixPath(httpx.URL(url).path).name
    if PurePosixPath(name).suffix:
        return name
    plain = (content_type or "").lower().startswith("text/plain")
    return "page.txt" if plain else "page.html"


def _read_page(hit: SearchHit, options: PageOptions, analyze: Callable[[str], list[str]]) -> _Page:
    from hanlin.knowledge.chunking import chunk_document
    from hanlin.knowledge.loaders import LoaderOptions, load_bytes
    from hanlin.net.ssrf import safe_fetch

    try:
        fetched = safe_fetch(
            hit.url,
            allow_private=options.allow_private,
            allowed_hosts=options.allowed_hosts,
            max_bytes=options.max_bytes,
            timeout=options.timeout,
        )
        docs = load_bytes(
            fetched.content,
            source=fetched.url,
            name=_page_name(fetched.url, fetched.content_type),
            options=LoaderOptions(max_file_bytes=options.max_bytes),
            content_type=fetched.content_type,
        )
        if not docs:
            return _Page(hit, [], note="page not read: no text found")
        doc = docs[0]
        chunks = chunk_document(doc, max_tokens=options.passage_tokens, overlap=0)
    except HanlinError as exc:
        return _Page(hit, [], note=f"page not read: {exc.message}")
    rows = [(c.char_start, c.char_end, c.text, analyze(c.text)) for c in chunks if c.text.strip()]
    return _Page(hit, rows, title=doc.title)


def _best_passages(
    page: _Page, query_tokens: set[str], idf: dict[str, float], keep: int
) -> tuple[list[tuple[int, int, str]], float]:
    """The ``keep`` chunks sharing the most (idf-weighted) query words, in page order."""
    scored = []
    for i, (start, end, text, tokens) in enumerate(page.chunks):
        counts = Counter(t for t in tokens if t in query_tokens)
        # saturating term frequency, as BM25 does: the third mention adds little
        score = sum(idf[t] * c / (c + 1.2) for t, c in counts.items())
        scored.append((score, -i, (start, end, text)))
    scored.sort(reverse=True)
    chosen = [s for s in scored[:keep] if s[0] > 0] or scored[:1]
    chosen.sort(key=lambda s: -s[1])
    return [s[2] for s in chosen], max((s[0] for s in chosen), default=0.0)


def cite_sources(
    query: str, hits: list[SearchHit], *, fetch: bool, options: PageOptions | None = None
) -> list[WebSource]:
    """Number the hits ``[1]..[n]`` as citable sources.

    With ``fetch``, the top ``options.top_k`` pages are read (in parallel, through the
    SSRF guard, with the size and time limits of ``options``), parsed by the knowledge-base
    loaders, chunked, and each source's text becomes its passages most relevant to ``query``;
    a page that cannot be read keeps the engine's snippet and says why in ``note``.
    """
    options = options or PageOptions()
    if not fetch:
        return [_source(n, h, h.snippet) for n, h in enumerate(hits, 1)]
    from hanlin.knowledge.tokenize import Analyzer, AnalyzerOptions

    analyzer = Analyzer(AnalyzerOptions(cjk="bigram"))
    top = hits[: options.top_k]
    # one worker per page, so the whole read takes about one page's time limit
    with ThreadPoolExecutor(max_workers=max(1, len(top))) as pool:
        pages = list(pool.map(lambda h: _read_page(h, options, analyzer.analyze), top))
    df: Counter[str] = Counter()
    total = 0
    for page in pages:
        for *_, tokens in page.chunks:
            df.update(set(tokens))
            total += 1
    idf = {t: math.log(1 + (total - c + 0.5) / (c + 0.5)) for t, c in df.items()}
    query_tokens = set(analyzer.analyze(query))
    sources = []
    for n, page in enumerate(pages, 1):
        if not page.chunks:
            note = page.note or "page not read: no text found"
            sources.append(_source(n, page.hit, page.hit.snippet, note=note))
            continue
        picked, score = _best_passages(page, query_tokens, idf, options.passages)
        text = "\n…\n".join(p[2] for p in picked)
        source = _source(n, page.hit, text, title=page.title)
        source.fetched, source.score = True, score
        source.char_start, source.char_end = picked[0][0], picked[-1][1]
        sources.append(source)
    return sources


def _source(
    n: int, hit: SearchHit, text: str, *, title: str | None = None, note: str | None = None
) -> WebSource:
    """A source showing ``text``; the engine's title wins over the page's own ``title``."""
    return WebSource(
        n=n,
        title=hit.title or title or hit.url,
        url=hit.url,
        text=text,
        snippet=hit.snippet,
        engine=hit.engine,
        rank=hit.rank,
        published=hit.published,
        site=hit.site,
        note=note,
        char_end=len(text),
    )


# --- as RAG evidence --------------------------------------------------------------------------


def to_rag_evidence(sources: list[WebSource]) -> list[Evidence]:
    """The sources as RAG :class:`~hanlin.rag.base.Evidence` with :class:`Citation` s numbered
    as the sources are, so a RAG answer can cite web results next to (or instead of) knowledge
    base chunks. ``chunk_id`` is ``-n`` (a web source is no stored chunk), ``doc`` and
    ``source`` are the URL."""
    out = []
    for s in sources:
        citation = Citation(
            n=s.n,
            chunk_id=-s.n,
            doc=s.url,
            source=s.url,
            title=s.title,
            heading_path=[],
            page=None,
            page_end=None,
            char_start=s.char_start,
            char_end=s.char_end,
            snippet=s.text,
            score=s.score,
        )
        out.append(Evidence(-s.n, s.text, s.score, {"web": s.score}, citation))
    return out


def format_sources(sources: list[WebSource]) -> str:
    """Numbered source blocks in the RAG answer prompt's format (``source.txt``)."""
    from hanlin.rag.templates import source_block

    return "\n\n".join(source_block(s.n, f"{s.title} ({s.url})", s.text) for s in sources)


__all__ = ["PageOptions", "WebSource", "cite_sources", "format_sources", "to_rag_evidence"]
