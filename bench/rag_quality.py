"""RAG answer quality on the Chinese sets with gold answers (DRCD dev, CMRC 2018 trial).

    .venv/bin/python bench/rag_quality.py [--sets drcd,cmrc] [--drcd-n 500 | --all] [--gen-n 100]

For every question the knowledge base of its corpus answers through ``RagEngine`` — extractive
mode (the offline default) for all sampled questions, and generative mode with the bundled
Gemma 3 270M base model for the first ``--gen-n`` of them (it runs at tens of tokens/s on
CPU, so it gets a short answer budget and a smaller context). Reported per mode:

- contains-gold: the answer text contains a gold answer (over all questions; refusals miss);
- citation precision: of all chunks cited by answers, the fraction whose text contains a gold
  answer; first-citation precision: the same for the chunk cited as [1];
- evidence hit: some evidence chunk contains a gold answer (what retrieval made possible);
- refusal rate (these questions are all answerable, so every refusal is a false one) and
  p50/p95 latency per question;
- mid-sentence: the share of answers with a quote (extractive) or an ending (generative) that
  stops inside a sentence — half a hard-wrapped line, a bare heading — rather than at sentence
  punctuation or where its line ends in the source (target 0).

Texts are compared after NFKC, lower-casing and removing whitespace. Knowledge bases are
cached in bench/.cache/home. Writes bench/out/rag_quality.json and .md (``--out`` renames).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
import unicodedata
from pathlib import Path
from typing import Any

from rag_common import HERE, Query, knowledge_base, queries, use_bench_home


def norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def has_gold(text: str, answers: list[str]) -> bool:
    t = norm(text)
    return any(norm(a) and norm(a) in t for a in answers)


#: one quoted sentence per line of an extractive answer: 「…」[1] or “…” [1]
_QUOTE = re.compile(r"^\s*[「“](.*)[」”]\s*(?:\[\d+\]\s*)*$")
_ENDS = tuple("。！？；!?.…」』”’）)")


def _squashed(text: str) -> tuple[str, set[int]]:
    """``text`` without whitespace, and the positions in it where a line ended."""
    out: list[str] = []
    ends: set[int] = set()
    for ch in text:
        if ch == "\n":
            ends.add(len(out))
        elif not ch.isspace():
            out.append(ch)
    return "".join(out), ends


def _whole(quote: str, evidence: list[str]) -> bool:
    """A quote is whole when it ends with sentence punctuation, or where its line or paragraph
    ends in the evidence it was taken from (a list item, a table row without a full stop)."""
    if quote.rstrip().endswith(_ENDS):
        return True
    q = "".join(quote.split())
    for text in evidence:
        flat, ends = _squashed(text)
        at = flat.find(q)
        while at != -1:
            end = at + len(q)
            if end == len(flat) or end in ends:
                return True
            at = flat.find(q, at + 1)
    return False


def mid_sentence(text: str, mode: str, evidence: list[str] | None = None) -> bool:
    """Whether an answer quotes (extractive) or ends (generative) inside a sentence."""
    if mode != "extractive":
        return not text.rstrip().rstrip("]0123456789[ ").endswith(_ENDS)
    quotes = [m.group(1) for line in text.splitlines() if (m := _QUOTE.match(line))]
    return not quotes or any(not _whole(q, evidence or []) for q in quotes)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(engine: Any, qs: list[Query], mode: str) -> dict[str, Any]:
    from hanlin.rag.base import Answer

    n = len(qs)
    contains = refused = cited = cited_ok = with_cit = first_ok = ev_hit = cut = 0
    latencies: list[float] = []
    completion_tokens = 0
    for i, q in enumerate(qs):
        t0 = time.perf_counter()
        a: Answer = engine.ask(q.text, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000)
        completion_tokens += a.usage.completion_tokens
        if any(has_gold(e.text, q.answers) for e in a.evidence):
            ev_hit += 1
        if a.refused:
            refused += 1
            continue
        if has_gold(a.text, q.answers):
            contains += 1
        cut += mid_sentence(a.text, mode, [e.text for e in a.evidence])
        for c in a.citations:
            cited += 1
            cited_ok += has_gold(c.snippet, q.answers)
        if a.citations:
            with_cit += 1
            first_ok += has_gold(a.citations[0].snippet, q.answers)
        if (i + 1) % 100 == 0:
            print(f"  {mode}: {i + 1}/{n} (load {load()})", flush=True)
    answered = n - refused
    lat = sorted(latencies)
    return {
        "mode": mode,
        "questions": n,
        "contains_gold": round(contains / n, 4),
        "contains_gold_answered": round(contains / answered, 4) if answered else None,
        "citation_precision": round(cited_ok / cited, 4) if cited else None,
        "first_citation_precision": round(first_ok / with_cit, 4) if with_cit else None,
        "citations": cited,
        "citations_per_answer": round(cited / answered, 3) if answered else None,
        "evidence_hit": round(ev_hit / n, 4),
        "refusal_rate": round(refused / n, 4),
        "mid_sentence": round(cut / answered, 4) if answered else None,
        "latency_p50_ms": round(statistics.median(lat), 1),
        "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
        "completion_tokens": completion_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sets",
        default="drcd,cmrc",
        help="comma-separated: drcd, cmrc, or folders in the same layout (corpus.jsonl, "
        "queries.jsonl with answers, qrels/)",
    )
    ap.add_argument("--drcd-n", type=int, default=500, help="DRCD sample size (fixed seed)")
    ap.add_argument("--all", action="store_true", help="every DRCD question (3,524)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-n", type=int, default=100, help="questions per set, generative mode")
    ap.add_argument("--gen-tokens", type=int, default=32, help="answer budget, generative mode")
    ap.add_argument("--gen-context", type=int, default=600, help="source tokens, generative")
    ap.add_argument("--out", default="rag_quality", help="name of the result files")
    ap.add_argument("--out-dir", default=str(HERE / "out"), help="folder for the result files")
    args = ap.parse_args()
    use_bench_home()
    from hanlin.config import RagSettings
    from hanlin.rag.engine import RagEngine

    rows: list[dict[str, Any]] = []
    started = {"load": load(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    for name in args.sets.split(","):
        kb = knowledge_base(name)
        n = None if name != "drcd" or args.all else args.drcd_n
        qs = queries(name, n, args.seed)
        print(f"[{name}] {len(qs)} questions (load {load()})", flush=True)
        with RagEngine(kb) as engine:
            row = run(engine, qs, "extractive")
        rows.append({"set": name, "model": "-", **row, "load_after": load()})
        print(rows[-1], flush=True)
        if args.gen_n > 0:
            gen = RagSettings(answer_tokens=args.gen_tokens, max_context_tokens=args.gen_context)
            with RagEngine(kb, settings=gen) as engine:
                row = run(engine, qs[: args.gen_n], "generative")
            rows.append({"set": name, "model": "local/gemma3-270m", **row, "load_after": load()})
            print(rows[-1], flush=True)
        kb.close()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "started": started,
        "cpus": os.cpu_count(),
        "drcd_sample": None if args.all else args.drcd_n,
        "seed": args.seed,
        "generative": {
            "questions": args.gen_n,
            "max_tokens": args.gen_tokens,
            "context_tokens": args.gen_context,
        },
        "rows": rows,
    }
    (out / f"{args.out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = [
        "| set | mode | model | questions | contains gold | citation precision | first citation "
        "precision | evidence hit | refusal rate | mid-sentence | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['mode']} | {r['model']} | {r['questions']} | "
            f"{pct(r['contains_gold'])} | {pct(r['citation_precision'])} | "
            f"{pct(r['first_citation_precision'])} | {pct(r['evidence_hit'])} | "
            f"{pct(r['refusal_rate'])} | {pct(r['mid_sentence'])} | "
            f"{r['latency_p50_ms']:.0f} | {r['latency_p95_ms']:.0f} |"
        )
    (out / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
