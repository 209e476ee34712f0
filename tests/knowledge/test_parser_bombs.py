"""Files crafted to blow up parsers fail alone, with a reason, without growing the caller.

Every attack is performed for real: a PDF whose content stream inflates to a gigabyte, .docx
archives whose parts add up to gigabytes or lie about their size, a PDF that keeps the parser
busy, JSON nested past the recursion limit. Each is reported as failed with its reason while the
good files of the same batch are ingested, and the resident memory of the calling process (the
server, in the HTTP test) stays flat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin import KnowledgeBase
from hanlin.config import Settings, load_settings
from hanlin.errors import LoaderError
from hanlin.knowledge.loaders import LoaderOptions, load_bytes
from hanlin.knowledge.loaders.inflation import InflateBudget, InflateLimitError
from hanlin.knowledge.parsing import ParseLimits, ParsePool
from hanlin.server.app import create_app
from hanlin.testing import bombs
from tests.conftest import job_worker, on_postgres
from tests.server.conftest import LiveServer, wait_job

MiB = 1 << 20
GOOD_TEXT = "Glaciers carve valleys into the shape of the letter U."


def rss() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def settings_for(home: Path, **knowledge: Any) -> Settings:
    return load_settings(home=home, knowledge={"embed_workers": 1, **knowledge})


def load(data: bytes, name: str, **options: Any) -> Any:
    return load_bytes(data, source=name, name=name, options=LoaderOptions(**options))


# --- bounded decompression, in any process ---------------------------------------------------
def test_inflating_stops_at_the_budget_not_at_the_end_of_the_bomb() -> None:
    bomb = bombs.deflate_zeros(1 << 30)
    assert len(bomb) < 2 * MiB
    started = time.monotonic()
    with pytest.raises(InflateLimitError, match="more than the limit of 8 MB"):
        InflateBudget(8 * MiB, "test").inflate_zlib(bomb)
    assert time.monotonic() - started < 1.0  # 8 MB inflated, not 1 GB
    ok = zlib.compress(b"normal text " * 1000)
    assert InflateBudget(MiB).inflate_zlib(ok) == zlib.decompress(ok)
    with pytest.raises(zlib.error):
        InflateBudget(MiB).inflate_zlib(ok[:-20])  # truncated: an error, as zlib.decompress
    assert InflateBudget(MiB).inflate_zlib(ok[:-20], lenient=True).startswith(b"normal text")


def test_pdf_stream_bomb_is_refused_by_the_loader_itself() -> None:
    before = rss()
    with pytest.raises(LoaderError) as err:
        load(bombs.pdf_bomb(1 << 30), "bomb.pdf", max_inflated_bytes=32 * MiB)
    assert "PDF decompresses to more than the limit of 32 MB" in err.value.message
    assert "knowledge.max_inflated_mb" in (err.value.hint or "")
    assert rss() - before < 100 * MiB
    assert load(bombs.pdf_text(GOOD_TEXT), "good.pdf")[0].text == GOOD_TEXT


def test_docx_of_many_small_parts_adding_up_to_gigabytes_is_refused() -> None:
    data = bombs.docx_many_members()  # 2400 parts of 900 KB, each under the per-part check
    assert len(data) < 4 * MiB
    with pytest.raises(
        LoaderError, match=r"zip bomb: it unpacks to 2\d{3} MB, more than the limit of 256 MB"
    ):
        load(data, "parts.docx")
    # under the total, but compressed far better than any real document
    with pytest.raises(LoaderError, match=r"compressed \d+:1 together"):
        load(bombs.docx_many_members(members=150), "parts.docx")


def test_docx_part_lying_about_its_size_is_caught_by_really_inflating_it() -> None:
    data = bombs.docx_lying_member()  # declares 1000 bytes, inflates to 1 GiB
    with pytest.raises(LoaderError, match="does not match its declared size or checksum"):
        load(data, "liar.docx")
    assert "Report" in load(bombs.docx_text(GOOD_TEXT), "good.docx")[0].text


# --- isolation: budgets per file, in worker processes ----------------------------------------
@pytest.fixture()
def bomb_folder(tmp_path: Path) -> Path:
    """Good files of four formats and a bomb of each kind."""
    root = tmp_path / "batch"
    root.mkdir()
    (root / "good.md").write_bytes(bombs.markdown_text(GOOD_TEXT))
    (root / "good.pdf").write_bytes(bombs.pdf_text(GOOD_TEXT))
    (root / "good.docx").write_bytes(bombs.docx_text(GOOD_TEXT))
    (root / "good.json").write_text('[{"text": "Moraines mark where a glacier stopped."}]')
    (root / "stream-bomb.pdf").write_bytes(bombs.pdf_bomb(1 << 30))
    (root / "parts-bomb.docx").write_bytes(bombs.docx_many_members())
    (root / "liar.docx").write_bytes(bombs.docx_lying_member())
    (root / "spin.pdf").write_bytes(bombs.pdf_spin())
    (root / "deep.json").write_bytes(bombs.json_nesting())
    return root


EXPECTED = {
    "stream-bomb.pdf": "PDF decompresses to more than the limit of 64 MB",
    "parts-bomb.docx": "zip bomb: it unpacks to",
    "liar.docx": "does not match its declared size or checksum",
    "spin.pdf": "parsing took longer than the limit of 2 s (knowledge.parse_timeout_s)",
    "deep.json": "nested too deeply",
}


@pytest.mark.slow
def test_each_bomb_fails_alone_and_the_good_files_are_ingested(
    bomb_folder: Path, tmp_path: Path, hanlin_home: Path
) -> None:
    settings = settings_for(hanlin_home, parse_timeout_s=2, max_inflated_mb=64)
    warm = tmp_path / "warm"
    warm.mkdir()
    (warm / "warm.md").write_bytes(bombs.markdown_text("Warm-up text about rivers."))
    (warm / "warm.pdf").write_bytes(bombs.pdf_text("Warm-up PDF about lakes."))
    with KnowledgeBase.create("bombs", settings=settings) as kb:
        assert kb.add(warm).ok  # imports, model and caches loaded before measuring
        before = rss()
        report = kb.add(bomb_folder)
        grown = rss() - before
        reasons = {Path(s.path).name: s.reason for s in report.skipped}
        assert set(reasons) == set(EXPECTED), reasons
        for name, reason in EXPECTED.items():
            assert reason in reasons[name], (name, reasons[name])
        assert all(s.hint for s in report.skipped)
        titles = {Path(d.source).name for d in kb.documents()}
        assert {"good.md", "good.pdf", "good.docx", "good.json"} <= titles
        hits = kb.search("glacier valleys letter U", k=3)
        assert hits and GOOD_TEXT in hits[0].chunk.text
    assert grown < 0.05 * before, f"RSS grew {grown / MiB:.1f} MB from {before / MiB:.0f} MB"


@pytest.mark.slow
def test_a_parse_past_the_memory_limit_is_stopped_and_reported(hanlin_home: Path) -> None:
    limits = ParseLimits(memory_mb=256, max_inflated_mb=8192, timeout_s=60)
    with ParsePool(limits) as pool:
        before = rss()
        with pytest.raises(LoaderError) as err:
            pool.parse(
                bombs.pdf_bomb(1 << 30), source="b.pdf", name="b.pdf", options=LoaderOptions()
            )
        assert "exceeded the parse memory limit of 256 MB (knowledge.parse_memory_mb)" in str(
            err.value
        )
        assert rss() - before < 50 * MiB
        # the pool goes on with a fresh worker
        docs = pool.parse(
            bombs.pdf_text(GOOD_TEXT), source="g.pdf", name="g.pdf", options=LoaderOptions()
        )
        assert docs[0].text == GOOD_TEXT


def _worker_pids(pool: ParsePool) -> set[int]:
    return {w.proc.pid for w in pool._all}


def test_workers_are_reused_replaced_after_a_timeout_and_closed() -> None:
    good = bombs.markdown_text(GOOD_TEXT)
    pool = ParsePool(ParseLimits(timeout_s=1))
    pool.parse(good, source="a.md", name="a.md", options=LoaderOptions())
    first = _worker_pids(pool)
    pool.parse(good, source="b.md", name="b.md", options=LoaderOptions())
    assert _worker_pids(pool) == first  # reused: no start-up per file
    with pytest.raises(LoaderError, match="longer than the limit of 1 s"):
        pool.parse(bombs.pdf_spin(), source="s.pdf", name="s.pdf", options=LoaderOptions())
    (pid,) = first
    assert _exited(pid)  # killed, not left spinning
    pool.parse(good, source="c.md", name="c.md", options=LoaderOptions())
    (second,) = _worker_pids(pool)
    assert second != pid
    pool.close()
    assert _exited(second) and not pool._all


def test_in_process_parsing_is_available_for_debugging() -> None:
    with ParsePool(ParseLimits(workers=0)) as pool:
        docs = pool.parse(
            bombs.docx_text(GOOD_TEXT), source="g.docx", name="g.docx", options=LoaderOptions()
        )
        assert GOOD_TEXT in docs[0].text and not pool._all
        with pytest.raises(LoaderError, match="zip bomb"):  # decompression stays bounded
            pool.parse(
                bombs.docx_many_members(), source="b.docx", name="b.docx", options=LoaderOptions()
            )


SCRIPT = """
import sys, threading
from hanlin.knowledge.loaders import LoaderOptions
from hanlin.knowledge.parsing import ParseLimits, ParsePool
from hanlin.testing import bombs

pool = ParsePool(ParseLimits(timeout_s=600))
pool.parse(b"# hello\\n", source="a.md", name="a.md", options=LoaderOptions())
print(next(iter(pool._all)).proc.pid, flush=True)
pool.parse(bombs.pdf_spin(), source="s.pdf", name="s.pdf", options=LoaderOptions())
"""


@pytest.mark.slow
def test_a_plain_script_works_and_its_workers_die_with_it(tmp_path: Path) -> None:
    """No ``if __name__ == "__main__"`` guard needed; a worker busy parsing when its parent is
    killed (no chance to clean up) exits on its own."""
    script = tmp_path / "ingest_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    time.sleep(0.5)  # the worker is now spinning on the PDF
    assert not _exited(worker, wait=0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _exited(worker, wait=10)


def _exited(pid: int, wait: float = 5.0) -> bool:
    """Whether ``pid`` is gone (or a zombie) within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- through the real server -----------------------------------------------------------------
@pytest.mark.slow
def test_uploaded_bombs_fail_and_the_server_memory_stays_flat(hanlin_home: Path) -> None:
    settings = settings_for(hanlin_home, parse_timeout_s=2, max_inflated_mb=64)
    # on PostgreSQL the job worker runs in this process too: measured with the server
    with job_worker(settings):
        server = LiveServer(create_app(settings))
        uploads = [
            ("good.md", bombs.markdown_text(GOOD_TEXT)),
            ("good.pdf", bombs.pdf_text(GOOD_TEXT)),
            ("stream-bomb.pdf", bombs.pdf_bomb(1 << 30)),
            ("parts-bomb.docx", bombs.docx_many_members()),
            ("liar.docx", bombs.docx_lying_member()),
            ("deep.json", bombs.json_nesting()),
        ]
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                assert client.post("/api/kb", json={"name": "up"}).status_code == 201

                def upload(files: list[tuple[str, bytes]]) -> dict[str, Any]:
                    resp = client.post("/api/kb/up/files", files=[("files", f) for f in files])
                    assert resp.status_code == 202, resp.text
                    return wait_job(client, "up", resp.json()["job"], timeout=120)

                job = upload(uploads)  # also the warm-up: imports, model, caches, a worker
                status = {f["filename"]: (f["status"], f.get("reason") or "") for f in job["files"]}
                assert status["good.md"][0] == "done" and status["good.pdf"][0] == "done"
                for name in ("stream-bomb.pdf", "parts-bomb.docx", "liar.docx", "deep.json"):
                    assert status[name][0] == "failed" and EXPECTED[name] in status[name][1]
                if on_postgres():
                    # the uploads' bytes pass through this process (into the database, out to
                    # the worker): the heap keeps the freed multi-MB buffers' pages for a few
                    # rounds before it settles
                    for _ in range(3):
                        upload(uploads[2:])
                # measured: bombs only (ingesting good files grows a knowledge base's caches)
                before = rss()
                for _ in range(3):
                    job = upload(uploads[2:])
                    assert [f["status"] for f in job["files"]] == ["failed"] * 4
                grown = rss() - before
        finally:
            server.stop()
    assert grown < 0.05 * before, f"server RSS grew {grown / MiB:.1f} MB from {before / MiB:.0f} MB"
