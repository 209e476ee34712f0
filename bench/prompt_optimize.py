"""The prompt optimiser on the bundled offline model: short-answer extraction in Chinese.

    .venv/bin/python bench/prompt_optimize.py ../shared/eval/zh/drcd-dev
    .venv/bin/python bench/prompt_optimize.py DATASET --out bench/out/prompt_optimize.json

Builds a QA set from a BEIR folder whose queries carry gold answers (DRCD, CMRC 2018): each
question with a context — the sentence of its judged paragraph that holds the gold answer and
the sentences on either side, at most ``--max-context`` characters, so a call of the 270M model
stays around a second on two shared cores — keeping answers of at most ``--max-answer``
characters (short-answer extraction). A seeded sample of ``--examples`` is split by the
optimiser into validation and optimise parts; the prompt ``qa.extract`` (a one-line instruction
and the input, as a user would first write it) is optimised for F1 against
``local/gemma3-270m`` (``hanlin prompt optimize`` with the same options), in a temporary
HANLIN_HOME. Results: the report (every candidate, validation F1 before and after with the
paired bootstrap interval, calls, time) in ``--out``, and the QA file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

BASELINE = "根据上下文回答问题。\n\n上下文：{context}\n问题：{question}"
_SENTENCE = re.compile(r"(?<=[。！？!?])")


def window(paragraph: str, answer: str, limit: int) -> str | None:
    """The sentence holding ``answer`` with its neighbours, trimmed to ``limit`` characters
    (neighbours dropped first); None when the answer is not in the paragraph."""
    sentences = [s for s in _SENTENCE.split(paragraph) if s.strip()]
    for i, s in enumerate(sentences):
        if answer in s:
            for lo, hi in ((i - 1, i + 2), (i, i + 2), (i - 1, i + 1), (i, i + 1)):
                text = "".join(sentences[max(lo, 0) : hi]).strip()
                if len(text) <= limit:
                    return text
            return None
    return None


def build(root: Path, n: int, seed: int, max_context: int, max_answer: int) -> list[dict]:
    """QA rows ``{id, question, context, answers}`` from a BEIR folder with answers."""
    docs = {}
    with (root / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            docs[rec["_id"]] = rec["text"]
    qrels: dict[str, str] = {}
    for path in sorted((root / "qrels").glob("*.tsv")):
        for line in path.read_text("utf-8").splitlines()[1:]:
            cells = line.split("\t")
            qrels.setdefault(cells[0], cells[1])
    rows = []
    with (root / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            answers = [a for a in rec.get("answers") or [] if a.strip()]
            doc = docs.get(qrels.get(rec["_id"], ""))
            if not answers or doc is None or len(answers[0]) > max_answer:
                continue
            context = window(doc, answers[0], max_context)
            if context and rec.get("text", "").strip():
                rows.append(
                    {
                        "id": rec["_id"],
                        "question": rec["text"],
                        "context": context,
                        "answers": answers,
                    }
                )
    random.Random(seed).shuffle(rows)
    return rows[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="a BEIR folder whose queries carry answers")
    parser.add_argument("--out", type=Path, default=Path("bench/out/prompt_optimize.json"))
    parser.add_argument("--target", default="local/gemma3-270m")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--val-split", type=float, default=0.5)
    parser.add_argument("--score-size", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--shots", default="0..3")
    parser.add_argument("--budget-calls", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--max-context", type=int, default=160)
    parser.add_argument("--max-answer", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = build(args.dataset, args.examples, args.seed, args.max_context, args.max_answer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    qa = args.out.with_suffix(".qa.jsonl")
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    home = Path(tempfile.mkdtemp(prefix="hanlin-bench-optimize-"))
    os.environ["HANLIN_HOME"] = str(home)

    from hanlin.cli.progress import progress_bar
    from hanlin.config import load_settings
    from hanlin.evals.base import Example
    from hanlin.evals.optimize import OptimizeOptions, optimize, parse_shots
    from hanlin.models.gateway import Gateway
    from hanlin.prompts import prompt_library
    from hanlin.prompts.base import NewVersion

    settings = load_settings()
    library = prompt_library(settings)
    library.create("qa.extract", NewVersion(text=BASELINE, message="baseline"), "bench")
    gateway = Gateway(settings)
    options = OptimizeOptions(
        target=args.target,
        budget_calls=args.budget_calls,
        val_split=args.val_split,
        candidates=args.candidates,
        shots=parse_shots(args.shots),
        seed=args.seed,
        score_size=args.score_size,
        max_tokens=args.max_tokens,
    )
    load_before = os.getloadavg()
    started = time.perf_counter()
    with progress_bar("optimising") as progress:
        report = optimize(
            library,
            gateway,
            "qa.extract",
            [Example(**r) for r in rows],
            options,
            dataset=f"{args.dataset.name} ({len(rows)} short answers)",
            author="bench",
            progress=progress,
        )
    wall = time.perf_counter() - started
    gateway.close()
    result: dict[str, Any] = {
        "command": "python bench/prompt_optimize.py "
        + " ".join(f"{k}={v}" for k, v in vars(args).items()),
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "wall_s": round(wall, 1),
        "per_call_s": round(wall / max(report.calls["used"] or 1, 1), 2),
        "report": report.model_dump(),
        "saved_text": library.get("qa.extract", version=report.saved_version).text
        if report.saved_version
        else None,
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
    v = report.validation
    print(f"{len(rows)} examples: {report.splits}")
    for c in report.candidates:
        score = "-" if c.score is None else f"{c.score:.3f}"
        print(f"  #{c.index} {c.stage:<11} shots={len(c.shots)} {score}  {c.instruction[:50]!r}")
    if v.baseline and v.winner and v.gain:
        print(
            f"validation F1 (n={v.n}): {v.baseline.mean:.3f} → {v.winner.mean:.3f}, gain "
            f"{v.gain.mean:+.3f} [{v.gain.low:+.3f}, {v.gain.high:+.3f}]"
        )
    print(f"calls {report.calls}, {wall:.0f} s wall ({result['per_call_s']} s/call); {args.out}")


if __name__ == "__main__":
    main()
