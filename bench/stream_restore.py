"""Streaming restore: masked answers streamed in random chunks come back whole, and no
placeholder — whole or in part — ever reaches the reader.

    python bench/stream_restore.py [bench/pii_mixed.jsonl …] --out bench/out [--streams 10000]

Each text of the sets (labelled PII sentences, as `bench/pii.py` generates them) is masked as
the gateway masks a prompt; the masked text plays the model's answer (it repeats every
placeholder). It is then streamed through :class:`~hanlin.guard.masking.StreamRestorer`:

- ``--streams`` streams, each a random text cut into 1–40 chunks at random places (chunks of one
  character included), and
- for every text, the two-chunk stream split at each of its positions (every place a
  placeholder can be cut).

A *corruption* is a stream whose shown text differs from the original; a *leak* is a shown
chunk holding a placeholder or the start of one (what a reader would see flash up). Both must
be 0. Also reported: the time restoring adds per chunk.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hanlin.guard.detect import detector
from hanlin.guard.masking import Masker, StreamRestorer

DEFAULT_SETS = [Path(__file__).parent / "pii_mixed.jsonl"]


def _texts(paths: list[Path]) -> list[str]:
    texts = []
    for path in paths:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def _cuts(rng: random.Random, n: int) -> list[int]:
    k = rng.randint(0, min(39, max(0, n - 1)))
    return sorted(rng.sample(range(1, n), k)) if n > 1 else []


def _leaks(shown: str, masker: Masker) -> bool:
    """Whether a shown chunk holds a placeholder or a proper start of one at its end."""
    if any(p in shown for p in masker.values):
        return True
    cut = shown.rfind("<")
    return cut != -1 and masker.is_prefix(shown[cut:]) and shown[cut:] not in masker.values


def _stream(masker: Masker, answer: str, cuts: list[int], timings: list[float]) -> tuple[str, bool]:
    restorer = StreamRestorer(masker)
    out, leaked, last = [], False, 0
    for cut in [*cuts, len(answer)]:
        chunk, last = answer[last:cut], cut
        t0 = time.perf_counter()
        shown = restorer.feed(chunk)
        timings.append(time.perf_counter() - t0)
        leaked |= _leaks(shown, masker)
        out.append(shown)
    tail = restorer.flush()
    leaked |= _leaks(tail, masker)
    out.append(tail)
    return "".join(out), leaked


def run(texts: list[str], streams: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    det = detector()
    prepared = []
    for text in texts:
        masker = Masker(det)
        masker.reserve([text])
        answer = masker.mask(text)
        if masker.values:
            prepared.append((text, masker, answer))
    timings: list[float] = []
    counts = {"streams": 0, "chunks": 0, "corrupted": 0, "leaked": 0, "placeholders": 0}
    plans: list[tuple[int, list[int]]] = []
    for _ in range(streams):
        i = rng.randrange(len(prepared))
        plans.append((i, _cuts(rng, len(prepared[i][2]))))
    for i, (_, _, answer) in enumerate(prepared):  # every split position of every text
        plans.extend((i, [p]) for p in range(1, len(answer)))
    for i, cuts in plans:
        text, masker, answer = prepared[i]
        shown, leaked = _stream(masker, answer, cuts, timings)
        counts["streams"] += 1
        counts["chunks"] += len(cuts) + 1
        counts["placeholders"] += sum(answer.count(p) for p in masker.values)
        counts["corrupted"] += shown != text
        counts["leaked"] += leaked
    us = sorted(t * 1e6 for t in timings)
    return {
        **counts,
        "texts": len(prepared),
        "random_streams": streams,
        "per_chunk_us_p50": round(statistics.median(us), 2),
        "per_chunk_us_p99": round(us[int(len(us) * 0.99)], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--streams", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=20261207)
    args = p.parse_args()
    result = run(_texts(args.sets), args.streams, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stream_restore.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["corrupted"] or result["leaked"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
