"""LlamaIndex as the side-by-side anchor: ingest a folder and search it the LlamaIndex way.

Runs only in the bench venv (``.bench-venv``: ``llama-index-core`` 0.14, ``llama-index-retrievers-
bm25``, ``hanlin`` editable), never in Hanlin's own environment::

    OMP_NUM_THREADS=1 .bench-venv/bin/python bench/anchor_llamaindex.py     # offline smoke run

Fairness choices (all parameters, defaults shown):

- **Same embedding model.** :class:`HanlinEmbedding` wraps ``hanlin.models.embeddings.get_embedder``
  so LlamaIndex's dense retrieval uses exactly Hanlin's vectors.
- **Same chunk budget.** ``SentenceSplitter(chunk_size=320, chunk_overlap=48)`` = Hanlin's
  ``knowledge.chunk_tokens`` / ``chunk_overlap`` defaults. ``token_counter="tiktoken"`` is
  LlamaIndex's own default (cl100k_base, loaded from the file bundled in llama-index-core);
  ``"hanlin"`` counts with ``hanlin.text.count_tokens`` instead, so both systems cut
  to the same budget in the same unit.
- **No file path in the indexed text.** SimpleDirectoryReader keeps ``file_path`` in the text that
  is embedded and BM25-indexed (``MetadataMode.EMBED``); a temp path is noise, so it is excluded
  unless ``include_file_path=True`` (LlamaIndex's literal default).
- **Chinese BM25.** ``BM25Retriever`` 0.8 tokenizes with a regex (``token_pattern``, via bm25s,
  default ``(?u)\\b\\w\\w+\\b``), an optional PyStemmer stemmer and a stopword list
  (``language``). Its ``tokenizer=`` argument is deprecated and *silently ignored* by
  ``from_defaults`` (it is not passed on), so a jieba tokenizer cannot be plugged in. On Chinese
  the default pattern makes every run of Han characters between punctuation one "word" (near-zero
  recall). The fairest out-of-the-box setup is a ``token_pattern`` that emits overlapping Han
  character bigrams (plus isolated single Han characters and Latin/digit words of 2+ chars),
  ``skip_stemming=True`` and ``language="zh"`` (bm25s' Chinese stopword list): ``zh_tokens=
  "bigram"``, the default. ``"unigram"`` (one token per Han character) and ``"jieba"`` (a small
  subclass, :class:`JiebaBM25Retriever`, that feeds jieba tokens to the same bm25s engine — not
  something LlamaIndex offers itself) are there to compare.
- **Hybrid** = ``QueryFusionRetriever(mode="reciprocal_rerank", num_queries=1, use_async=False)``
  over the vector retriever and BM25, each asked for ``candidates`` results (default ``k``); no
  LLM is involved (``llm=MockLLM()`` so nothing resolves OpenAI).

Offline: llama-index-core ships the tiktoken files (``_static/tiktoken_cache``) and NLTK's
``punkt_tab`` + ``stopwords`` (``_static/nltk_cache``), and uses them only while
``TIKTOKEN_CACHE_DIR`` / ``NLTK_DATA`` are *unset*; if either points elsewhere it tries to download.
This module pins both to the bundled folders before importing LlamaIndex, loads cl100k_base itself
from the bundled file and sets it as LlamaIndex's global tokenizer.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _pin_llamaindex_offline_caches() -> None:
    """Point tiktoken and NLTK at the data bundled in llama-index-core (no download attempts)."""
    spec = find_spec("llama_index.core")
    if spec is None or spec.origin is None:
        return
    static = Path(spec.origin).parent / "_static"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(static / "tiktoken_cache")
    os.environ["NLTK_DATA"] = str(static / "nltk_cache")


_pin_llamaindex_offline_caches()

import bm25s  # noqa: E402
import jieba  # noqa: E402
import numpy as np  # noqa: E402
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from llama_index.core.ingestion import IngestionPipeline  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.retrievers import QueryFusionRetriever  # noqa: E402
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    BaseNode,
    Document,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
)
from llama_index.core.vector_stores.utils import (  # noqa: E402
    metadata_dict_to_node,
    node_to_metadata_dict,
)
from llama_index.retrievers.bm25 import BM25Retriever  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

from hanlin.models.embeddings.base import EmbeddingModel, get_embedder  # noqa: E402

Mode = Literal["dense", "keyword", "hybrid"]
Language = Literal["auto", "en", "zh"]
ZhTokens = Literal["bigram", "unigram", "jieba"]
TokenCounter = Literal["tiktoken", "hanlin"]

#: Han ideographs (CJK Unified + Extension A + Compatibility), as a regex character-class body.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: One capture group inside a lookahead, so ``re.findall`` returns *overlapping* matches:
#: every Han bigram, a Han character standing alone, or a whole non-Han word of 2+ word chars.
ZH_BIGRAM_PATTERN = (
    rf"(?u)(?=([{_HAN}]{{2}}|(?<![{_HAN}])[{_HAN}](?![{_HAN}])|(?<![^\W{_HAN}])[^\W{_HAN}]{{2,}}))"
)
#: Each Han character is a token; non-Han words of 2+ word chars as in the default pattern.
ZH_UNIGRAM_PATTERN = rf"(?u)[{_HAN}]|(?<![^\W{_HAN}])[^\W{_HAN}]{{2,}}"
_HAN_RE = re.compile(f"[{_HAN}]")
_LETTER_RE = re.compile(r"[^\W\d_]")


# --------------------------------------------------------------------------------------------
# embedding adapter


class HanlinEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model backed by a Hanlin embedder (same model, same vectors).

    ``seconds`` accumulates the time spent inside the Hanlin embedder (documents and queries).
    """

    _embedder: EmbeddingModel = PrivateAttr()
    _seconds: float = PrivateAttr(default=0.0)

    def __init__(self, name: str = "fast-use", **kwargs: Any) -> None:
        embedder = get_embedder(name)
        kwargs.setdefault("embed_batch_size", max(1, int(embedder.batch_size)))
        super().__init__(model_name=name, **kwargs)
        self._embedder = embedder
        self._seconds = 0.0

    @classmethod
    def class_name(cls) -> str:
        return "HanlinEmbedding"

    @property
    def embedder(self) -> EmbeddingModel:
        return self._embedder

    @property
    def seconds(self) -> float:
        return self._seconds

    def reset_timer(self) -> None:
        self._seconds = 0.0

    def _get_query_embedding(self, query: str) -> Embedding:
        t0 = time.perf_counter()
        vec = self._embedder.embed_query(query)
        self._seconds += time.perf_counter() - t0
        return [float(x) for x in vec]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        t0 = time.perf_counter()
        mat = self._embedder.embed_documents(texts)
        self._seconds += time.perf_counter() - t0
        return [[float(x) for x in row] for row in np.asarray(mat)]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embedding(text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)


# --------------------------------------------------------------------------------------------
# tokenizers (chunk budgets, Chinese BM25)


def _bundled_cl100k() -> Callable[[str], list[int]]:
    """cl100k_base from the tiktoken file bundled in llama-index-core (TIKTOKEN_CACHE_DIR)."""
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")

    def encode(text: str) -> list[int]:
        return enc.encode(text, allowed_special="all")

    return encode


def _hanlin_counter() -> Callable[[str], list[int]]:
    """A 'tokenizer' whose length is ``hanlin.text.count_tokens`` (budget unit)."""
    from hanlin.text import count_tokens

    def encode(text: str) -> list[int]:
        return [0] * count_tokens(text)

    return encode


_TOKENIZER = _bundled_cl100k()
Settings.tokenizer = _TOKENIZER  # LlamaIndex's global tokenizer, already loaded: no download
Settings.llm = MockLLM()  # nothing here needs an LLM; never resolve the OpenAI default


def jieba_tokens(text: str) -> list[str]:
    """Lower-cased jieba words, whitespace and punctuation dropped (precise mode)."""
    return [w for w in (t.strip().lower() for t in jieba.lcut(text)) if w and re.search(r"\w", w)]


def detect_language(texts: Sequence[str]) -> Literal["en", "zh"]:
    """'zh' when Han characters are at least 30 % of the letters."""
    han = sum(len(_HAN_RE.findall(t)) for t in texts)
    letters = sum(len(_LETTER_RE.findall(t)) for t in texts)
    return "zh" if letters and han / letters >= 0.3 else "en"


class JiebaBM25Retriever(BM25Retriever):
    """BM25Retriever on the same bm25s engine, but with jieba tokens for corpus and queries.

    Not LlamaIndex out of the box (its ``tokenizer=`` argument is ignored): a comparison point
    that shows what LlamaIndex would score with proper Chinese word segmentation.
    """

    def __init__(self, nodes: Sequence[BaseNode], similarity_top_k: int = 10) -> None:
        corpus_tokens = [
            jieba_tokens(n.get_content(metadata_mode=MetadataMode.EMBED)) for n in nodes
        ]
        bm25 = bm25s.BM25()
        bm25.index(corpus_tokens, show_progress=False)
        bm25.corpus = [node_to_metadata_dict(n) | {"node_id": n.node_id} for n in nodes]
        super().__init__(existing_bm25=bm25, similarity_top_k=similarity_top_k, skip_stemming=True)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        vocab = self.bm25.vocab_dict
        toks = [t for t in jieba_tokens(query_bundle.query_str) if t in vocab]
        if not toks:  # bm25s raises on a query with no known token
            return []
        indexes, scores = self.bm25.retrieve([toks], k=self.similarity_top_k, show_progress=False)
        out: list[NodeWithScore] = []
        for idx, score in zip(indexes[0], scores[0], strict=True):
            node_dict = idx if isinstance(idx, dict) else self.corpus[int(idx)]
            out.append(NodeWithScore(node=metadata_dict_to_node(node_dict), score=float(score)))
        return out


def make_bm25(
    nodes: Sequence[BaseNode],
    language: Literal["en", "zh"],
    similarity_top_k: int = 10,
    zh_tokens: ZhTokens = "bigram",
) -> BM25Retriever:
    """LlamaIndex's BM25 retriever configured for ``language`` (see the module docstring)."""
    top_k = max(1, min(similarity_top_k, len(nodes)))
    if language == "en":
        return BM25Retriever.from_defaults(nodes=list(nodes), similarity_top_k=top_k)
    if zh_tokens == "jieba":
        return JiebaBM25Retriever(nodes, similarity_top_k=top_k)
    pattern = ZH_BIGRAM_PATTERN if zh_tokens == "bigram" else ZH_UNIGRAM_PATTERN
    return BM25Retriever.from_defaults(
        nodes=list(nodes),
        similarity_top_k=top_k,
        language="zh",
        skip_stemming=True,
        token_pattern=pattern,
    )


# --------------------------------------------------------------------------------------------
# ingest + search


@dataclass
class Hit:
    node_id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def file_path(self) -> str | None:
        path = self.metadata.get("file_path")
        return str(path) if path is not None else None


def ingest_folder_llamaindex(
    folder: Path,
    embed_model_name: str,
    *,
    chunk_size: int = 320,
    chunk_overlap: int = 48,
    similarity_top_k: int = 10,
    language: Language = "auto",
    zh_tokens: ZhTokens = "bigram",
    token_counter: TokenCounter = "tiktoken",
    include_file_path: bool = False,
    show_progress: bool = False,
) -> tuple[VectorStoreIndex, BM25Retriever, dict[str, float]]:
    """Load ``folder`` recursively, split, embed with the Hanlin model, build both indexes.

    Returns the vector index, the BM25 retriever and timings in seconds: ``load``, ``split``,
    ``embed``, ``index`` (= ``index_vector`` + ``index_bm25``), ``total`` (model weights load
    before the clock starts and are reported apart as ``model_load``); plus the counts
    ``documents`` and ``nodes`` and ``language_zh`` (1.0 when Chinese BM25 was configured).
    """
    embed = HanlinEmbedding(embed_model_name)
    t0 = time.perf_counter()
    # one-time loads happen outside the timed steps: embedding weights, the token counter,
    # jieba's dictionary (only for the jieba BM25 variant)
    embed.embedder.embed_documents(["warm up"])
    tokenizer = _TOKENIZER if token_counter == "tiktoken" else _hanlin_counter()
    tokenizer("warm up")
    if zh_tokens == "jieba" and language != "en":
        jieba.initialize()
    model_load_s = time.perf_counter() - t0
    t_start = time.perf_counter()
    docs: list[Document] = SimpleDirectoryReader(str(folder), recursive=True).load_data(
        show_progress=show_progress
    )
    if not include_file_path:
        for d in docs:
            d.excluded_embed_metadata_keys.append("file_path")
            d.excluded_llm_metadata_keys.append("file_path")
    t_loaded = time.perf_counter()

    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenizer
    )
    pipeline = IngestionPipeline(transformations=[splitter, embed])
    embed.reset_timer()
    nodes = pipeline.run(documents=docs, show_progress=show_progress)
    t_embedded = time.perf_counter()
    split_s = (t_embedded - t_loaded) - embed.seconds

    index = VectorStoreIndex(nodes, embed_model=embed, show_progress=show_progress)
    embed_s = embed.seconds
    t_vec = time.perf_counter()
    lang: Literal["en", "zh"] = (
        detect_language([d.text for d in docs]) if language == "auto" else language
    )
    bm25 = make_bm25(nodes, lang, similarity_top_k=similarity_top_k, zh_tokens=zh_tokens)
    t_bm25 = time.perf_counter()

    timings = {
        "load": t_loaded - t_start,
        "split": split_s,
        "embed": embed_s,
        "index_vector": t_vec - t_embedded,
        "index_bm25": t_bm25 - t_vec,
        "index": t_bm25 - t_embedded,
        "total": t_bm25 - t_start,
        "model_load": model_load_s,
        "documents": float(len(docs)),
        "nodes": float(len(nodes)),
        "language_zh": 1.0 if lang == "zh" else 0.0,
    }
    return index, bm25, timings


def _bm25_with_top_k(bm25: BM25Retriever, n: int) -> BM25Retriever:
    num_docs = int(bm25.bm25.scores.get("num_docs", n))
    bm25.similarity_top_k = max(1, min(n, num_docs))  # bm25s refuses k > number of documents
    return bm25


def search_llamaindex(
    index: VectorStoreIndex,
    bm25: BM25Retriever,
    query: str,
    k: int,
    mode: Mode,
    *,
    candidates: int | None = None,
) -> list[Hit]:
    """Top-``k`` nodes for ``query``: ``dense`` (vector index), ``keyword`` (BM25) or ``hybrid``
    (QueryFusionRetriever, reciprocal rank fusion of both, each asked for ``candidates`` results,
    default ``k``; ``num_queries=1`` so no LLM query generation)."""
    n = max(k, candidates or k)
    if mode == "dense":
        results = index.as_retriever(similarity_top_k=k).retrieve(query)
    elif mode == "keyword":
        results = _bm25_with_top_k(bm25, k).retrieve(query)
    elif mode == "hybrid":
        fusion = QueryFusionRetriever(
            [index.as_retriever(similarity_top_k=n), _bm25_with_top_k(bm25, n)],
            llm=MockLLM(),
            mode=FUSION_MODES.RECIPROCAL_RANK,  # "reciprocal_rerank"
            similarity_top_k=k,
            num_queries=1,
            use_async=False,
        )
        results = fusion.retrieve(query)
    else:
        raise ValueError(f"mode must be dense, keyword or hybrid, not {mode!r}")
    return [
        Hit(
            node_id=r.node.node_id,
            score=float(r.score or 0.0),
            text=r.node.get_content(metadata_mode=MetadataMode.NONE),
            metadata=dict(r.node.metadata),
        )
        for r in results[:k]
    ]


# --------------------------------------------------------------------------------------------
# smoke run


_SMOKE_FILES = {
    "tea.txt": (
        "Green tea is made from unoxidised leaves of Camellia sinensis. It contains catechins "
        "such as EGCG, which are studied as antioxidants."
    ),
    "rust.md": (
        "# Ownership\n\nRust manages memory through ownership and borrowing: every value has one "
        "owner, and the borrow checker rejects dangling references at compile time."
    ),
    "zh/hanlin.txt": (
        "翰林院是中国古代的官署，负责起草诏书、编修国史和为皇帝讲解经典。"
        "唐玄宗时设立翰林学士，明清两代翰林院是士人入仕的重要途径。"
    ),
}


def _smoke(model: str = "fast-use") -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in _SMOKE_FILES.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        index, bm25, t = ingest_folder_llamaindex(root, model, similarity_top_k=3)
        print(f"ingested with {model}: " + ", ".join(f"{k}={v:.3f}" for k, v in t.items()))
        print(f"BM25: language={'zh' if t['language_zh'] else 'en'}, {type(bm25).__name__}")
        checks = [
            ("What antioxidants are in green tea?", "tea.txt"),
            ("borrow checker dangling references", "rust.md"),
        ]
        ok = True
        modes: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
        for query, want in checks:
            for mode in modes:
                hits = search_llamaindex(index, bm25, query, 2, mode)
                top = Path(hits[0].file_path or "?").name if hits else "-"
                good = top == want
                ok &= good
                verdict = "ok" if good else "MISS"
                print(f"  [{mode:7}] {query!r} -> {top} ({hits[0].score:.4f}) {verdict}")
        # Chinese keyword search on a Chinese-only folder (bigram BM25 configured automatically)
        zh_index, zh_bm25, zt = ingest_folder_llamaindex(root / "zh", model, similarity_top_k=3)
        hits = search_llamaindex(zh_index, zh_bm25, "翰林学士是什么时候设立的", 1, "keyword")
        zh_ok = bool(zt["language_zh"]) and bool(hits) and hits[0].score > 0
        ok &= zh_ok
        print(f"  [zh kw  ] language_zh={zt['language_zh']:.0f} score={hits[0].score:.4f}")
    print("smoke: OK" if ok else "smoke: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_smoke(sys.argv[1] if len(sys.argv) > 1 else "fast-use"))
