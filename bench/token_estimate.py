"""How close ``count_tokens`` (the chunk-budget estimate) is to real LLM tokenizers.

    .bench-venv/bin/python bench/token_estimate.py --tokenizer cl100k   # tiktoken, as LlamaIndex
    .venv/bin/python bench/token_estimate.py --tokenizer gemma          # the bundled Gemma 3 GGUF

For English prose (SciFact abstracts), Chinese (DRCD paragraphs), Python source (this repo's
``src/``) and Markdown (``docs/``), prints the tokenizer's count and the estimate's ratio to it
for several Latin characters-per-token divisors (``count_tokens`` uses
``LATIN_CHARS_PER_TOKEN``). A ratio above 1 over-counts: chunks come out smaller than the budget.
Results: bench/out/token_estimate-<tokenizer>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from hanlin.text import CJK, LATIN_CHARS_PER_TOKEN, WORD_CHAR

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVAL = Path(os.environ.get("HANLIN_EVAL", REPO.parent / "shared" / "eval"))
DIVISORS = (4, 5, 6, 7)


def texts() -> dict[str, list[str]]:
    def jsonl(rel: str, n: int) -> list[str]:
        with (EVAL / rel).open(encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in list(f)[:n]]

    return {
        "English prose (SciFact)": jsonl("scifact/corpus.jsonl", 2000),
        "Chinese (DRCD)": jsonl("zh/drcd-dev/corpus.jsonl", 500),
        "Python (src/)": [p.read_text("utf-8") for p in sorted(REPO.glob("src/hanlin/**/*.py"))],
        "Markdown (docs/)": [p.read_text("utf-8") for p in sorted(REPO.glob("docs/*.md"))],
    }


PATTERNS = {d: re.compile(rf"[{CJK}]|{WORD_CHAR}{{1,{d}}}|[^\s{CJK}\w]|_") for d in DIVISORS}


def estimate(text: str, divisor: int) -> int:
    """count_tokens with another divisor: CJK characters, ceil(run / divisor), other marks."""
    return len(PATTERNS[divisor].findall(text))


def tokenizer(name: str) -> Callable[[str], int]:
    if name == "cl100k":
        from anchor_llamaindex import _TOKENIZER  # the file bundled in llama-index-core

        return lambda t: len(_TOKENIZER(t))
    from llama_cpp import Llama

    from hanlin.models.providers.llamacpp_models import bundled_model_path

    llm = Llama(str(bundled_model_path()), vocab_only=True, verbose=False)
    return lambda t: len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", choices=["cl100k", "gemma"], required=True)
    args = ap.parse_args()
    count = tokenizer(args.tokenizer)
    rows = []
    print(f"{'text':26} {'tokens':>9} " + " ".join(f"{'÷' + str(d):>6}" for d in DIVISORS))
    for name, items in texts().items():
        real = sum(count(t) for t in items)
        ratios = {d: round(sum(estimate(t, d) for t in items) / real, 3) for d in DIVISORS}
        rows.append({"texts": name, "n": len(items), "tokens": real, "ratio": ratios})
        print(f"{name:26} {real:9,} " + " ".join(f"{ratios[d]:6.2f}" for d in DIVISORS))
    print(f"count_tokens uses ÷{LATIN_CHARS_PER_TOKEN}")
    out = HERE / "out" / f"token_estimate-{args.tokenizer}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"tokenizer": args.tokenizer, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
