"""Choose the keyword analyzer's defaults by measurement.

For each evaluation set in ``shared/eval`` and each analyzer variant, index the corpus
(title + text) with real BM25 (tantivy over the analyzer's tokens, whitespace tokenizer) and
report nDCG@10, Recall@100 and analyzer throughput. Writes ``bench/out/analyzer_choice.md``.

    .venv/bin/python bench/analyzer_choice.py             # the variants behind the defaults
    .venv/bin/python bench/analyzer_choice.py --explore   # plus design alternatives
    .venv/bin/python bench/analyzer_choice.py --eval-dir ../shared/eval --sets scifact
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tantivy

from hanlin.knowledge.evaluation import BeirDataset, load_beir, ndcg_at_k, recall_at_k
from hanlin.knowledge.tokenize import Analyzer, AnalyzerOptions, _shared_resource

HERE = Path(__file__).resolve().parent
DEFAULT_EVAL = HERE.parent.parent / "shared" / "eval"

SETS = {  # name -> (folder under eval, language)
    "scifact": ("scifact", "en"),
    "drcd": ("zh/drcd-dev", "zh"),
    "cmrc2018": ("zh/cmrc2018-trial", "zh"),
    # Mixed scripts, as in a knowledge base holding both: DRCD's Traditional questions
    # against its corpus converted to Simplified with OpenCC.
    "drcd-cross": ("zh/drcd-dev", "zh"),
}


def load_set(eval_dir: Path, name: str) -> BeirDataset:
    ds = load_beir(eval_dir / SETS[name][0])
    if name == "drcd-cross":
        import opencc

        conv = opencc.OpenCC("t2s")
        ds.corpus = {
            i: {"title": conv.convert(d["title"]), "text": conv.convert(d["text"])}
            for i, d in ds.corpus.items()
        }
    return ds


# --- design alternatives, measured with --explore -------------------------------------------


class _SearchModeAnalyzer(Analyzer):
    """jieba ``cut_for_search`` (adds the sub-words of long words) instead of precise mode."""

    def _jieba_words(self, han: str) -> list[str]:
        words: list[str] = _shared_resource("jieba", _jieba).lcut_for_search(han, HMM=False)
        return words


class _HmmAnalyzer(Analyzer):
    """jieba precise mode with the HMM that guesses out-of-dictionary words (jieba's default)."""

    def _jieba_words(self, han: str) -> list[str]:
        words: list[str] = _shared_resource("jieba", _jieba).lcut(han, HMM=True)
        return words


class _BigramUnigramAnalyzer(Analyzer):
    """Character bigrams plus unigrams (every character also indexed alone)."""

    def _jieba_words(self, han: str) -> list[str]:
        return list(han)


def _jieba() -> object:
    from hanlin.knowledge.tokenize import _make_jieba

    return _make_jieba()


@dataclass
class Variant:
    name: str
    make: Callable[[], Analyzer]
    explore: bool = False


def variants(set_name: str, explore: bool) -> list[Variant]:
    lang = SETS[set_name][1]
    out: list[Variant] = []
    if lang == "en":
        for stem in (True, False):
            for stop in (True, False):
                opts = AnalyzerOptions(stem=stem, stopwords=stop)
                out.append(
                    Variant(f"stem={int(stem)} stop={int(stop)}", lambda o=opts: Analyzer(o))
                )
        return out
    for cjk in ("jieba", "bigram", "jieba+bigram"):
        for t2s in (True, False):
            opts = AnalyzerOptions(cjk=cjk, t2s=t2s)  # type: ignore[arg-type]
            out.append(Variant(f"{cjk} t2s={int(t2s)}", lambda o=opts: Analyzer(o)))
    if explore and set_name != "drcd-cross":
        jb = AnalyzerOptions(cjk="jieba", t2s=True)
        jbb = AnalyzerOptions(cjk="jieba+bigram", t2s=True)
        out += [
            Variant(
                "jieba t2s=1 stop=0",
                lambda: Analyzer(jb.model_copy(update={"stopwords": False})),
                True,
            ),
            Variant(
                "jieba+bigram t2s=1 stop=0",
                lambda: Analyzer(jbb.model_copy(update={"stopwords": False})),
                True,
            ),
            Variant("jieba cut_for_search t2s=1", lambda: _SearchModeAnalyzer(jb), True),
            Variant("jieba+bigram cut_for_search t2s=1", lambda: _SearchModeAnalyzer(jbb), True),
            Variant("jieba HMM t2s=1", lambda: _HmmAnalyzer(jb), True),
            Variant("jieba+bigram HMM t2s=1", lambda: _HmmAnalyzer(jbb), True),
            Variant("bigram+unigram t2s=1", lambda: _BigramUnigramAnalyzer(jbb), True),
        ]
    return out


# --- BM25 with tantivy ------------------------------------------------------------------------


def evaluate(
    ds: BeirDataset, analyzer: Analyzer, *, dedupe_query_terms: bool = True
) -> dict[str, float]:
    analyzer.warm_up()
    ids = list(ds.corpus)
    texts = [f"{d['title']}\n{d['text']}" for d in ds.corpus.values()]
    t0 = time.perf_counter()
    docs_tokens = [analyzer.analyze(t) for t in texts]
    t_analyze = time.perf_counter() - t0
    n_chars = sum(len(t) for t in texts)

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("n", stored=True)
    sb.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    schema = sb.build()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=64_000_000, num_threads=1)
    for n, toks in enumerate(docs_tokens):
        writer.add_document(tantivy.Document(n=n, body=" ".join(toks)))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    ndcg = recall = 0.0
    t0 = time.perf_counter()
    q_chars = 0
    for qid, qtext in ds.queries.items():
        q_chars += len(qtext)
        toks = analyzer.analyze(qtext)
        if dedupe_query_terms:
            toks = list(dict.fromkeys(toks))
        ranked: list[str] = []
        if toks:
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in toks]
            )
            for _score, addr in searcher.search(query, limit=100).hits:
                ranked.append(ids[searcher.doc(addr)["n"][0]])
        qrels = ds.qrels[qid]
        ndcg += ndcg_at_k(ranked, qrels, 10)
        recall += recall_at_k(ranked, qrels, 100)
    t_query = time.perf_counter() - t0
    nq = len(ds.queries)
    return {
        "ndcg@10": ndcg / nq,
        "recall@100": recall / nq,
        "chars/s": n_chars / t_analyze,
        "tokens/doc": sum(len(t) for t in docs_tokens) / len(docs_tokens),
        "queries/s": nq / t_query,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--eval-dir", type=Path, default=Path(os.environ.get("HANLIN_EVAL", DEFAULT_EVAL))
    )
    p.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    p.add_argument("--explore", action="store_true", help="also measure design alternatives")
    p.add_argument("--out", type=Path, default=HERE / "out" / "analyzer_choice.md")
    args = p.parse_args(argv)

    default = AnalyzerOptions()
    lines = [
        "# Keyword analyzer choice (BM25 via tantivy, k1=1.2 b=0.75)",
        "",
        f"Defaults: `{Analyzer(default).version}`",
        "",
        "| set | variant | nDCG@10 | Recall@100 | analyzer chars/s | tokens/doc | queries/s |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for name in args.sets:
        ds = load_set(args.eval_dir, name)
        for v in variants(name, args.explore):
            r = evaluate(ds, v.make())
            line = (
                f"| {name} | {v.name}{' (explore)' if v.explore else ''} | {r['ndcg@10']:.4f} "
                f"| {r['recall@100']:.4f} | {r['chars/s']:,.0f} | {r['tokens/doc']:.0f} "
                f"| {r['queries/s']:,.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
