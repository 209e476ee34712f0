"""Uploads cannot write outside their folder, smuggle other file types, or exhaust the disk."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hanlin.config import Settings
from hanlin.knowledge.uploads import content_problem, display_name
from hanlin.server.app import create_app
from tests.conftest import kept_uploads
from tests.server.conftest import wait_job

TEXT = b"Rivers carry sediment to the sea.\n"
STORED = re.compile(r"^up_[0-9a-f]{16}\.[a-z]+$")


@pytest.fixture()
def small(fresh_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Path]]:
    """A server with 1 MB per file and 2 MB per request, and an empty knowledge base."""
    settings = fresh_settings(max_upload_mb=1, max_request_mb=2)
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/kb", json={"name": "up"}).status_code == 201
        yield client, settings.home


def _multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A hand-made multipart body: (raw filename bytes, content) per part."""
    boundary = "hanlinboundary42"
    body = b""
    for name, data in parts:
        body += f"--{boundary}\r\n".encode()
        body += b'Content-Disposition: form-data; name="files"; filename="' + name + b'"\r\n'
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_traversal_and_absolute_names_never_become_paths(small: tuple[TestClient, Path]) -> None:
    client, home = small
    names = [b"../../evil.md", b"/etc/cron.d/evil.txt", b"..\\..\\win.txt", b"../../etc/passwd"]
    body, ctype = _multipart([(n, TEXT) for n in names])
    resp = client.post("/api/kb/up/files", content=body, headers={"content-type": ctype})
    assert resp.status_code == 202
    files = resp.json()["files"]
    assert [f["filename"] for f in files] == ["evil.md", "evil.txt", "win.txt", "passwd"]
    assert [f["status"] for f in files] == ["queued", "queued", "queued", "failed"]
    assert "unsupported file type without an extension" in files[3]["reason"]
    job = wait_job(client, "up", resp.json()["job"])
    assert [f["status"] for f in job["files"]] == ["done", "done", "done", "failed"]
    stored = kept_uploads(home, "up")
    assert len(stored) == 3 and all(STORED.match(name) for name in stored)
    assert not (home.parent / "evil.md").exists() and not (home / "evil.md").exists()
    titles = {r["source"] for r in client.get("/api/kb/up/documents").json()["data"]}
    assert {"evil.md", "evil.txt", "win.txt"} <= titles


def test_control_characters_in_names_are_refused(small: tuple[TestClient, Path]) -> None:
    client, home = small
    body, ctype = _multipart(
        [(b"a\x00b.txt", TEXT), (b"ok\x1b[31m.txt", TEXT), (b"\xff.txt", TEXT)]
    )
    resp = client.post("/api/kb/up/files", content=body, headers={"content-type": ctype})
    files = resp.json()["files"]
    assert resp.status_code == 202 and [f["status"] for f in files] == ["failed"] * 3
    assert "control characters" in files[0]["reason"] and "control" in files[1]["reason"]
    assert "UTF-8" in files[2]["reason"]
    assert resp.json()["status"] == "failed"
    assert kept_uploads(home, "up") == []


def test_content_must_match_the_type(small: tuple[TestClient, Path]) -> None:
    client, home = small
    exe = b"MZ\x90\x00" + b"\x00" * 200
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("a.txt", "x")
    files = [
        ("setup.pdf", exe),
        ("notes.txt", elf),
        ("letter.docx", b"%PDF-1.7 not a zip"),
        ("data.json", zipped.getvalue()),
        ("empty.md", b""),
        ("utf16.txt", "长江很长".encode("utf-16")),
    ]
    resp = client.post(
        "/api/kb/up/files", files=[("files", (n, d, "application/pdf")) for n, d in files]
    )
    got = {f["filename"]: f for f in resp.json()["files"]}
    assert "Windows executable, not what the name '.pdf' promises" in got["setup.pdf"]["reason"]
    assert "Linux executable" in got["notes.txt"]["reason"]
    assert "a PDF, not what the name '.docx' promises" in got["letter.docx"]["reason"]
    assert "ZIP archive" in got["data.json"]["reason"]
    assert got["empty.md"]["reason"] == "the file is empty"
    assert got["utf16.txt"]["status"] == "queued"
    job = wait_job(client, "up", resp.json()["job"])
    assert {f["filename"]: f["status"] for f in job["files"]}["utf16.txt"] == "done"
    assert len(kept_uploads(home, "up")) == 1  # only the good one was kept


def test_zip_bomb_docx_fails_with_the_reason(small: tuple[TestClient, Path]) -> None:
    client, _ = small
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\x00" * (20 << 20))  # 20 MB → ~20 KB
    assert len(bomb.getvalue()) < 1 << 20
    resp = client.post(
        "/api/kb/up/files", files=[("files", ("bomb.docx", bomb.getvalue(), "application/zip"))]
    )
    job = wait_job(client, "up", resp.json()["job"])
    assert job["status"] == "failed" and "zip bomb" in job["files"][0]["reason"]


def test_oversized_file_is_413_and_nothing_is_written(small: tuple[TestClient, Path]) -> None:
    client, home = small
    big = b"a" * ((1 << 20) + 10)
    resp = client.post(
        "/api/kb/up/files",
        files=[
            ("files", ("small.txt", TEXT, "text/plain")),
            ("files", ("big.txt", big, "text/plain")),
        ],
    )
    err = resp.json()["error"]
    assert (
        resp.status_code == 413
        and "'big.txt' is larger than the upload limit of 1 MB" in err["message"]
    )
    assert "server.max_upload_mb" in err["hint"]
    assert _files_under(home / "uploads") == []
    assert client.get("/api/kb/up/jobs").json()["data"] == []


def test_oversized_request_is_413_before_reading(small: tuple[TestClient, Path]) -> None:
    client, home = small
    part = b"b" * 900_000
    files = [("files", (f"f{i}.txt", part, "text/plain")) for i in range(3)]
    resp = client.post("/api/kb/up/files", files=files)
    assert resp.status_code == 413 and "request limit of 2 MB" in resp.json()["error"]["message"]
    assert _files_under(home / "uploads") == []


def test_wrong_requests(small: tuple[TestClient, Path]) -> None:
    client, _ = small
    not_multipart = client.post("/api/kb/up/files", json={"files": []})
    assert (
        not_multipart.status_code == 415 and "-F files=@" in not_multipart.json()["error"]["hint"]
    )
    body, ctype = _multipart([])
    nothing = client.post("/api/kb/up/files", content=body, headers={"content-type": ctype})
    assert nothing.status_code == 400 and nothing.json()["error"]["code"] == "no_files"
    truncated, ctype = _multipart([(b"a.txt", TEXT)])
    cut = client.post("/api/kb/up/files", content=truncated[:-30], headers={"content-type": ctype})
    assert cut.status_code == 400
    nokb = client.post("/api/kb/nosuch/files", files=[("files", ("a.txt", TEXT, "text/plain"))])
    assert nokb.status_code == 404


def test_name_and_content_checks_directly() -> None:
    assert display_name("C:\\Users\\me\\报告.pdf") == ("报告.pdf", None)
    assert display_name("..")[1] == "the upload has no file name"
    assert display_name("x" * 300 + ".txt")[1] == "the file name is longer than 255 bytes"
    assert content_problem(b"%PDF-1.4\n", ".pdf") is None
    assert content_problem(b"\n\n%PDF-1.4", ".pdf") is None  # header within the first 1 KB
    assert content_problem(b"# Title\n", ".md") is None
    assert content_problem(b"MZ is a fine start for text", ".txt") is None  # no NUL: text
