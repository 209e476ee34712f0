"""Local model throughput: the ``llamacpp`` provider vs raw ``llama_cpp.Llama.create_completion``.

Same GGUF (the bundled Gemma 3 270M unless --model-path), same rendered prompt, same n_ctx,
n_threads and n_batch, temperature 0, ``max_tokens`` tokens, no stop sequences on either side
(so both generate the full budget). Every repetition runs all variants — raw, our non-streamed
and streamed call, for each thread count — back to back in a rotating order, so drift in the
machine's load hits them alike. Reported per variant: median tokens/s over wall time, median
tokens per CPU-second of this process (what the call costs, much less sensitive to other load
on a shared machine), and ratios to raw at the same thread count (of the medians, and the
median of per-repetition ratios).

    .venv/bin/python bench/local_model.py                      # the default thread count
    .venv/bin/python bench/local_model.py --threads 1,2 --reps 9

The prompt is served from llama.cpp's prefix cache after the warm-up, as in a multi-turn chat.
Writes bench/out/local_model.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp

from hanlin.models.providers.llamacpp import LlamaCppProvider, bundled_model_path, default_threads
from hanlin.models.providers.llamacpp_prompt import render_prompt
from hanlin.models.types import ChatOptions, Message, TextDelta, UsageEvent

HERE = Path(__file__).resolve().parent
MODEL = "gemma3-270m"
QUESTION = "Write a long story about a dragon who learns to read."
RAW, COMPLETE, STREAM = "raw create_completion", "hanlin complete", "hanlin stream"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def measure(fn: Callable[[], int]) -> dict[str, float]:
    cpu, started = time.process_time(), time.perf_counter()
    tokens = fn()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds, "cpu_s": cpu}


def variants_for(
    path: Path, threads: int, args: argparse.Namespace, loop: asyncio.AbstractEventLoop
) -> dict[str, Callable[[], int]]:
    """The three calls at one thread count, each returning its completion tokens."""
    options = {
        "model_path": str(path),
        "n_ctx": args.n_ctx,
        "n_threads": threads,
        # no stop sequences, so every call generates max_tokens like the raw call
        "prompt_format": {"stop": []},
    }
    provider = LlamaCppProvider(dataclasses.replace(LlamaCppProvider.presets()[0], options=options))
    messages = [Message.user(QUESTION)]
    opts = ChatOptions(temperature=0, max_tokens=args.max_tokens)
    prompt = render_prompt(messages, provider.prompt_format(MODEL))
    raw = llama_cpp.Llama(
        str(path),
        n_ctx=args.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )

    def raw_call() -> int:
        out: Any = raw.create_completion(prompt, max_tokens=args.max_tokens, temperature=0, stop=[])
        return int(out["usage"]["completion_tokens"])

    def complete() -> int:
        resp = loop.run_until_complete(provider.complete(MODEL, messages, opts))
        return resp.usage.completion_tokens

    def stream() -> int:
        async def go() -> int:
            tokens, chunks = 0, 0
            async for event in provider.stream(MODEL, messages, opts):
                if isinstance(event, TextDelta):
                    chunks += 1
                elif isinstance(event, UsageEvent):
                    tokens = event.usage.completion_tokens
            assert chunks > 1
            return tokens

        return loop.run_until_complete(go())

    return {RAW: raw_call, COMPLETE: complete, STREAM: stream}


def summarize(rows: list[dict[str, float]], raw_rows: list[dict[str, float]]) -> dict[str, Any]:
    med = statistics.median(r["tok_s"] for r in rows)
    per_cpu = statistics.median(r["tokens"] / r["cpu_s"] for r in rows)
    return {
        "median_tok_s": round(med, 2),
        "min_tok_s": round(min(r["tok_s"] for r in rows), 2),
        "max_tok_s": round(max(r["tok_s"] for r in rows), 2),
        "median_tok_per_cpu_s": round(per_cpu, 2),
        "tokens": [int(r["tokens"]) for r in rows],
        "vs_raw": round(med / statistics.median(r["tok_s"] for r in raw_rows), 4),
        "vs_raw_paired": round(
            statistics.median(r["tok_s"] / b["tok_s"] for r, b in zip(rows, raw_rows, strict=True)),
            4,
        ),
        "vs_raw_cpu": round(
            per_cpu / statistics.median(r["tokens"] / r["cpu_s"] for r in raw_rows), 4
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default=str(default_threads()), help="e.g. 1 or 1,2")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--model-path", type=Path, default=None)
    args = parser.parse_args()
    path = args.model_path or bundled_model_path()
    thread_counts = [int(t) for t in args.threads.split(",")]
    loop = asyncio.new_event_loop()
    calls: dict[tuple[int, str], Callable[[], int]] = {}
    for threads in thread_counts:
        for name, fn in variants_for(path, threads, args, loop).items():
            calls[(threads, name)] = fn
    load_before = load_average()
    for fn in calls.values():  # warm-up: load the models, fill the prompt caches
        fn()
    samples: dict[tuple[int, str], list[dict[str, float]]] = {key: [] for key in calls}
    keys = list(calls)
    for rep in range(args.reps):
        shift = rep % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(measure(calls[key]))
    loop.close()
    report: dict[str, Any] = {
        "model": path.name,
        "llama_cpp_python": llama_cpp.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "load_before": load_before,
        "load_after": load_average(),
        "runs": [
            {
                "threads": threads,
                "variants": {
                    name: summarize(samples[(threads, name)], samples[(threads, RAW)])
                    for name in (RAW, COMPLETE, STREAM)
                },
            }
            for threads in thread_counts
        ],
    }

    print(f"{report['model']}, {args.max_tokens} tokens, median of {args.reps}, temperature 0")
    print(f"load average before {report['load_before']}, after {report['load_after']}")
    print(
        f"{'threads':>7}  {'variant':<22} {'tok/s':>7} {'min':>7} {'max':>7} "
        f"{'tok/cpu-s':>9} {'vs raw':>7} {'paired':>7} {'cpu':>7}"
    )
    for run in report["runs"]:
        for name, v in run["variants"].items():
            print(
                f"{run['threads']:>7}  {name:<22} {v['median_tok_s']:>7.2f} "
                f"{v['min_tok_s']:>7.2f} {v['max_tok_s']:>7.2f} "
                f"{v['median_tok_per_cpu_s']:>9.2f} {v['vs_raw']:>7.1%} "
                f"{v['vs_raw_paired']:>7.1%} {v['vs_raw_cpu']:>7.1%}"
            )
    out = HERE / "out" / "local_model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
