"""A real OTLP receiver for the export tests: Arize Phoenix's server, from PyPI, in a virtual
environment of its own (its dependencies are not Hanlin's), installed on first use into the
test cache and started on 127.0.0.1 with a temporary working directory.

Phoenix always opens an OTLP/gRPC port on every interface; the launcher binds it to 127.0.0.1
instead (tests listen on loopback only). Hanlin exports over OTLP/HTTP, which Phoenix serves on
its HTTP port at ``/v1/traces``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PHOENIX = "arize-phoenix==20.26.1"

# Phoenix's gRPC server binds "[::]:port"; rewrite the address to loopback, then run its CLI.
_LAUNCH = """
import sys, grpc.aio
_server = grpc.aio.server
def _loopback_server(*args, **kwargs):
    server = _server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
    return server
grpc.aio.server = _loopback_server
from phoenix.server.main import main
sys.argv = ["phoenix", "serve"]
main()
"""


class PhoenixUnavailable(RuntimeError):
    """Phoenix could not be installed or started here (the reason says why)."""


def _cache_root() -> Path:
    base = os.environ.get("HANLIN_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hanlin-tests"
    )
    return Path(base)


def phoenix_python() -> Path:
    """The interpreter of a virtual environment holding Phoenix, made on first use (about a
    minute and a half from PyPI; pip's cache makes later ones quick)."""
    env = _cache_root() / ("phoenix-" + PHOENIX.split("==")[1])
    python = env / "bin" / "python"
    done = env / ".installed"
    if done.exists():
        return python
    venv.create(env, with_pip=True, clear=True)
    run = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PHOENIX],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if run.returncode != 0:
        raise PhoenixUnavailable(f"pip install {PHOENIX} failed: {run.stderr[-2000:]}")
    done.touch()
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def phoenix_server(workdir: Path) -> Iterator[str]:
    """A running Phoenix server; yields its base URL (``http://127.0.0.1:PORT``)."""
    python = phoenix_python()
    port, grpc_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (workdir / "phoenix.log").open("w")
    proc = subprocess.Popen(
        [str(python), "-c", _LAUNCH], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise PhoenixUnavailable(
                    f"phoenix exited with {proc.returncode}: "
                    + (workdir / "phoenix.log").read_text()[-2000:]
                )
            try:
                if httpx.get(url + "/v1/projects", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise PhoenixUnavailable("phoenix did not answer within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def spans_in(url: str, project: str = "default") -> list[dict[str, object]]:
    """Every span Phoenix holds in ``project``, through its REST API."""
    out: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = httpx.get(f"{url}/v1/projects/{project}/spans", params=params, timeout=10)
        if r.status_code == 404:
            return out
        r.raise_for_status()
        body = r.json()
        out.extend(body["data"])
        cursor = body.get("next_cursor")
        if not cursor:
            return out


if __name__ == "__main__":  # pragma: no cover - a manual check
    print(phoenix_python(), file=sys.stderr)
