"""``hanlin serve`` from the command line: refusals with hints, and a real start-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hanlin.cli.main import main


def test_public_bind_without_keys_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--host", "0.0.0.0", "--port", "1"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "binds 0.0.0.0" in err and "hanlin apikeys create" in err


def test_unknown_knowledge_base_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--kb", "nosuch", "--port", "1"])
    assert info.value.code == 2 and "hanlin kb create nosuch" in capsys.readouterr().err


def test_a_typo_in_a_knowledge_base_name_suggests_the_existing_one(
    capsys: pytest.CaptureFixture[str], hanlin_home: Path
) -> None:
    assert main(["kb", "create", "sample"]) in (0, None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["serve", "--kb", "sampel", "--port", "1"])
    assert info.value.code == 2 and "did you mean 'sample'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["kb", "search", "sampel", "anything"])
    err = capsys.readouterr().err
    assert "did you mean 'sample'?" in err
    assert not (hanlin_home / "kb" / "sampel").exists()  # the typo created nothing


def test_a_busy_port_is_an_error_that_suggests_another(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            main(["serve", "--port", str(port)])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert f"--port {port + 1}" in err
    assert "serving on" not in err  # no banner before the bind succeeded


@pytest.mark.slow
def test_serve_starts_prints_url_and_answers(hanlin_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HANLIN_HOME": str(hanlin_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hanlin", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert f"serving on http://127.0.0.1:{port}" in err
    assert f"curl http://127.0.0.1:{port}/v1/chat/completions" in err
    assert proc.returncode in (0, 130)
