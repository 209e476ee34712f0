"""Fixtures for the browser tests: Debian's Chromium (installed with apt-get when missing) and a
real ``hanlin`` server on a random loopback port, with HANLIN_HOME in a temp dir.

Playwright drives the system Chromium through ``executable_path``; it never downloads a browser
(``playwright install`` is not used). Set ``HANLIN_E2E_URL`` to drive an already-running server
instead of starting one, and ``HANLIN_CHROMIUM`` to use another Chromium binary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find_chromium() -> str | None:
    explicit = os.environ.get("HANLIN_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt_install(packages: list[str]) -> str | None:
    """Install Debian packages non-interactively; returns why it could not, or None."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available (not a Debian/Ubuntu system)"
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        prefix = ["sudo", "-n"]
    else:
        return "not root and passwordless sudo is unavailable"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # the package lists may be stale or missing: refresh once
        subprocess.run([*prefix, "apt-get", "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"`apt-get install {' '.join(packages)}` failed: {done.stderr.strip()[-400:]}"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium binary, installed from Debian's `chromium` package if it is missing."""
    pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
    )
    explicit = os.environ.get("HANLIN_CHROMIUM")
    if explicit and not Path(explicit).is_file():
        pytest.skip(f"HANLIN_CHROMIUM={explicit} is not a file; unset it to use Debian's chromium")
    found = _find_chromium()
    if found is None:
        why = _apt_install(["chromium"])
        found = _find_chromium()
        if found is None:
            pytest.skip(
                "no Chromium for the browser tests and it cannot be installed "
                f"({why or 'installed, but no chromium binary on PATH'}); "
                "run `apt-get install chromium` or set HANLIN_CHROMIUM"
            )
        # CJK glyphs for readable Chinese screenshots; the assertions do not depend on it.
        _apt_install(["fonts-wqy-microhei"])
    return found


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn, in a thread, on a random loopback port; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the Hanlin server exited during start-up (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError("the Hanlin server did not start within 60 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def server_url(hanlin_home: Path) -> Iterator[str]:
    """A real Hanlin server (``create_app`` under uvicorn, in a thread) on a random port."""
    external = os.environ.get("HANLIN_E2E_URL")
    if external:
        yield external.rstrip("/")
        return
    from hanlin.server.app import create_app
    from tests.conftest import job_worker

    with job_worker(), serve(create_app()) as url:
        yield url


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go (``test-artifacts/ui`` under the repo root, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def console_errors() -> list[str]:
    """Errors the page logged to the browser console (and uncaught exceptions)."""
    return []


@pytest.fixture
def page(chromium_path: str, artifacts_dir: Path, console_errors: list[str]) -> Iterator[Any]:
    """A 1280×800 English page in headless Chromium, recording console errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        pg = context.new_page()
        pg.set_default_timeout(20_000)

        def on_console(message: Any) -> None:
            if message.type == "error":
                console_errors.append(f"{message.text} @ {message.location}")

        pg.on("console", on_console)
        pg.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
        try:
            yield pg
        finally:
            # The browser may be gone already after a failure.
            with contextlib.suppress(Exception):
                pg.screenshot(path=str(artifacts_dir / "99-last-state.png"), full_page=True)
            context.close()
            browser.close()
