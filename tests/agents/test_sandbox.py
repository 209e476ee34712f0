"""The ``python`` tool's sandbox under each isolation mode: model-written programs try each known
escape (reaching a service on this machine over TCP, UDP or a Unix socket, with and without
ctypes, reverse DNS, reading Hanlin's folder or other temporary files, starting programs,
writing outside the work folder) while a real listener or a planted file tells whether it worked.

bubblewrap is installed here when missing and possible (root with apt-get); a mode that cannot
run on this machine is skipped with the reason, never passed silently.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.agents.tools.isolation import ISOLATIONS
from hanlin.agents.tools.sandbox import (
    SandboxLimits,
    SandboxRun,
    isolation_in_force,
    probe,
    python_exec,
    run_python,
)
from hanlin.errors import ConfigError

MODES = ["bwrap", "unshare", "hook"]


@pytest.fixture(scope="session")
def bubblewrap() -> str:
    """``bwrap``, installed with apt-get when missing and we may (CI on a fresh Debian)."""
    found = shutil.which("bwrap")
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        pytest.skip(
            "bubblewrap is not installed and cannot be installed here (needs root and "
            "apt-get): run `apt-get install bubblewrap` to test the bwrap isolation"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = ""
    for step in ([apt, "install", "-y", "bubblewrap"], [apt, "update"]) * 2:
        done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=600)
        log = done.stderr[-300:]
        if shutil.which("bwrap"):
            probe.cache_clear()
            return str(shutil.which("bwrap"))
    pytest.skip(f"bubblewrap could not be installed with apt-get: {log}")


def _working(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "bwrap":
        request.getfixturevalue("bubblewrap")
    failure = probe(name)
    if failure is not None:
        pytest.skip(f"{name} isolation does not work on this machine: {failure}")
    return name


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return _working(request)


@pytest.fixture(params=[m for m in MODES if ISOLATIONS[m].isolated])
def isolated_mode(request: pytest.FixtureRequest) -> str:
    return _working(request)


def run(mode: str, code: str, **limits: float) -> SandboxRun:
    return run_python(code, SandboxLimits(isolation=mode, **limits))  # type: ignore[arg-type]


class Listener:
    """A real server on this machine that records whoever reaches it."""

    def __init__(self, family: int, kind: int, address: object) -> None:
        self.sock = socket.socket(family, kind)
        self.sock.bind(address)
        self.heard: list[bytes] = []
        if kind == socket.SOCK_STREAM:
            self.sock.listen()
        self.sock.settimeout(0.1)
        self.kind = kind
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self.kind == socket.SOCK_STREAM:
                    conn, _ = self.sock.accept()
                    conn.settimeout(1)
                    with conn:
                        try:
                            data = conn.recv(100)
                        except OSError:
                            data = b""
                    self.heard.append(b"connected:" + data)
                else:
                    self.heard.append(self.sock.recv(100))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> list[bytes]:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.heard


@pytest.fixture()
def tcp() -> Iterator[Listener]:
    """Stands in for the keyless Hanlin API on loopback."""
    listener = Listener(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
    yield listener
    listener.close()


@pytest.fixture()
def udp() -> Iterator[Listener]:
    """Stands in for a DNS resolver that would carry data out in its queries."""
    listener = Listener(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0))
    yield listener
    listener.close()


@pytest.fixture()
def unix_path() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="hs-")  # short: a socket path has at most 107 bytes
    yield os.path.join(folder, "api.sock")
    shutil.rmtree(folder)


# the start of every program that calls libc directly, where no audit hook can see it
_LIBC = """
import ctypes, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
def sockaddr_in(port):
    family = struct.pack("=H", socket.AF_INET)
    return family + struct.pack("!H", port) + bytes([127, 0, 0, 1]) + bytes(8)
def sockaddr_un(path):
    return struct.pack("=H", socket.AF_UNIX) + path
def outcome(ret):
    print("ESCAPED" if ret >= 0 else "BLOCKED errno", ctypes.get_errno())
"""


def escaped(result: SandboxRun) -> bool:
    return "ESCAPED" in result.stdout


# --- reaching services on this machine --------------------------------------------------------


def test_tcp_to_loopback(mode: str, tcp: Listener) -> None:
    port = tcp.sock.getsockname()[1]
    code = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"hi")
    print("ESCAPED")
except OSError as exc:
    print("BLOCKED", exc)
"""
    result = run(mode, code)
    assert "BLOCKED network access is disabled" in result.stdout, result
    assert tcp.close() == []


def test_tcp_to_loopback_through_libc(mode: str, tcp: Listener) -> None:
    port = tcp.sock.getsockname()[1]
    code = (
        _LIBC
        + f"""
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
addr = sockaddr_in({port})
ret = libc.connect(fd, addr, len(addr))
if ret == 0:
    libc.send(fd, b"ctypes", 6, 0)
outcome(ret)
"""
    )
    result = run(mode, code)
    heard = tcp.close()
    if mode == "hook":  # the documented gap: native code does not raise audit events
        assert escaped(result) and heard == [b"connected:ctypes"], result
    else:
        assert "BLOCKED" in result.stdout and heard == [], result


def test_udp_datagram_through_libc(mode: str, udp: Listener) -> None:
    """A DNS query carrying data would be one UDP datagram: it must not leave the sandbox."""
    port = udp.sock.getsockname()[1]
    code = (
        _LIBC
        + f"""
fd = libc.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
addr = sockaddr_in({port})
outcome(libc.sendto(fd, b"secret.example.", 15, 0, addr, len(addr)))
"""
    )
    result = run(mode, code)
    heard = udp.close()
    assert result.ok, result
    assert heard == ([b"secret.example."] if mode == "hook" else []), result


def test_unix_socket(mode: str, unix_path: str) -> None:
    listener = Listener(socket.AF_UNIX, socket.SOCK_STREAM, unix_path)
    code = f"""
import socket
try:
    socket.socket(socket.AF_UNIX).connect({unix_path!r})
    print("ESCAPED")
except OSError as exc:
    print("BLOCKED", exc)
"""
    libc_code = (
        _LIBC
        + f"""
fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
addr = sockaddr_un({unix_path.encode()!r})
outcome(libc.connect(fd, addr, len(addr)))
"""
    )
    plain, native = run(mode, code), run(mode, libc_code)
    heard = listener.close()
    assert "BLOCKED network access is disabled" in plain.stdout, plain
    if mode == "hook":
        assert escaped(native) and heard == [b"connected:"], native
    else:
        assert "BLOCKED" in native.stdout and heard == [], native


def test_abstract_unix_socket_through_libc(mode: str) -> None:
    """Abstract sockets have no file to hide: only a network namespace separates them."""
    name = f"\0hanlin-test-{uuid.uuid4().hex}"
    listener = Listener(socket.AF_UNIX, socket.SOCK_STREAM, name)
    code = (
        _LIBC
        + f"""
fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
addr = sockaddr_un({name.encode()!r})
outcome(libc.connect(fd, addr, len(addr)))
"""
    )
    result = run(mode, code)
    heard = listener.close()
    if mode == "hook":
        assert escaped(result) and heard == [b"connected:"], result
    else:
        assert "BLOCKED" in result.stdout and heard == [], result


def test_reverse_and_forward_lookups(mode: str) -> None:
    code = """
import socket
for name, call in [
    ("gethostbyaddr", lambda: socket.gethostbyaddr("127.0.0.1")),
    ("getnameinfo", lambda: socket.getnameinfo(("127.0.0.1", 80), 0)),
    ("getaddrinfo", lambda: socket.getaddrinfo("example.com", 80)),
]:
    try:
        call()
        print(name, "ESCAPED")
    except OSError as exc:
        print(name, "BLOCKED", exc)
"""
    result = run(mode, code)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("BLOCKED name lookups are disabled" in x for x in lines), result


# --- files ------------------------------------------------------------------------------------


def test_files_outside_the_work_folder(mode: str, hanlin_home: Path, tmp_path: Path) -> None:
    keys = hanlin_home / "keys.toml"
    keys.write_text("deepseek = 'sk-planted'\n")
    mine = tmp_path / "notes.txt"
    mine.write_text("private notes\n")
    code = (
        _LIBC
        + f"""
for path in ({str(keys)!r}, {str(mine)!r}):
    try:
        print("ESCAPED", open(path).read().strip())
    except OSError as exc:
        print("BLOCKED", type(exc).__name__)
# a program started from native code reads no more than the sandbox does
libc.system(b"cat {keys} {mine} 2>/dev/null | sed 's/^/ESCAPED by a child: /'")
"""
    )
    result = run(mode, code)
    if mode == "hook":  # the documented gap: same user, same files
        assert "ESCAPED deepseek = 'sk-planted'" in result.stdout, result
        assert "ESCAPED private notes" in result.stdout, result
    else:
        assert result.ok and not escaped(result), result
        assert result.stdout.count("BLOCKED") == 2, result


def test_isolated_modes_cannot_write_outside(isolated_mode: str) -> None:
    """(The hook mode runs as Hanlin's user and can write what it can, as documented.)"""
    target = Path(sys.prefix) / f"hanlin-sandbox-{uuid.uuid4().hex}"
    code = f"""
for path in ({str(target)!r}, "/usr/hanlin-sandbox-test"):
    try:
        open(path, "w").write("x")
        print("ESCAPED", path)
    except OSError as exc:
        print("BLOCKED", type(exc).__name__)
"""
    try:
        result = run(isolated_mode, code)
        assert result.stdout.count("BLOCKED") == 2 and not target.exists(), result
    finally:
        target.unlink(missing_ok=True)
        Path("/usr/hanlin-sandbox-test").unlink(missing_ok=True)


def test_isolated_modes_cannot_uncover_hidden_files(isolated_mode: str, tmp_path: Path) -> None:
    """A new user namespace gives back capabilities, but not over the mounts that hide things."""
    mine = tmp_path / "notes.txt"
    mine.write_text("private notes\n")
    code = (
        _LIBC
        + f"""
import os
libc.unshare(0x10000000 | 0x00020000)  # CLONE_NEWUSER | CLONE_NEWNS
for target in (b"/tmp", b"/root", b"/home", b"/"):
    libc.umount2(target, 2)  # MNT_DETACH
libc.mount(None, b"/", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, read-write
try:
    print("ESCAPED", open({str(mine)!r}).read())
except OSError as exc:
    print("BLOCKED", type(exc).__name__)
"""
    )
    result = run(isolated_mode, code)
    assert result.ok and "BLOCKED" in result.stdout and not escaped(result), result


# --- processes --------------------------------------------------------------------------------


def test_starting_programs_is_refused(mode: str) -> None:
    code = """
import os, subprocess
for name, start in [
    ("subprocess", lambda: subprocess.run(["true"])),
    ("os.system", lambda: os.system("true")),
    ("fork", os.fork),
]:
    try:
        start()
        print(name, "ESCAPED")
    except OSError as exc:
        print(name, "BLOCKED", exc)
"""
    result = run(mode, code)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("BLOCKED starting processes is disabled" in x for x in lines)


# --- what must keep working -------------------------------------------------------------------


def test_ordinary_programs_work(mode: str) -> None:
    code = """
import json, math, os, tempfile
print(math.factorial(20))
with open("table.csv", "w") as fh:
    fh.write("a,b\\n1,2\\n")
print(open("table.csv").read().splitlines()[1], sorted(os.listdir(".")))
with tempfile.TemporaryFile("w+", dir="/tmp") as fh:
    fh.write("scratch")
    fh.seek(0)
    print(fh.read())
try:
    import numpy
except ImportError:
    print("no numpy")
else:
    print(float(numpy.linalg.det(numpy.array([[2.0, 1.0], [1.0, 3.0]]))))
"""
    result = run(mode, code)
    assert result.ok, result
    lines = result.stdout.splitlines()
    assert lines[:3] == ["2432902008176640000", "1,2 ['main.py', 'table.csv']", "scratch"], result
    assert lines[3] in ("no numpy", "5.000000000000001", "5.0"), result


def test_limits_hold_in_every_mode(mode: str) -> None:
    cpu = run(mode, "while True: pass", cpu_seconds=1, wall_seconds=20)
    assert cpu.reason is not None and "CPU time limit" in cpu.reason, cpu
    wall = run(mode, "import time\ntime.sleep(30)", wall_seconds=1)
    assert wall.timed_out and "wall-clock limit" in str(wall.reason), wall
    memory = run(mode, "x = bytearray(2 * 1024**3)", memory_mb=256)
    assert "memory limit of 256 MB" in str(memory.reason), memory
    flood = run(mode, "print('x' * (3 << 20))", file_mb=1)
    assert "size limit of 1 MB" in str(flood.reason), flood


# --- what the model is told -------------------------------------------------------------------


def test_description_says_what_is_in_force(mode: str) -> None:
    tool = python_exec(SandboxLimits(isolation=mode))  # type: ignore[arg-type]
    assert tool.description.endswith(ISOLATIONS[mode].summary)
    if mode == "hook":
        assert "not a security boundary" in tool.description
    else:
        assert "no network at all" in tool.description
    result = asyncio.run(tool.run({"code": "print(1)"}))
    assert result.data["isolation"] == mode and result.data["stdout"] == "1\n"


def test_auto_takes_the_strongest_that_works(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    working = [name for name in MODES if probe(name) is None]
    assert isolation_in_force("auto").name == working[0]
    # neither bwrap nor unshare can be found: auto falls back to the hook, a named mode refuses
    monkeypatch.setenv("PATH", str(tmp_path))
    probe.cache_clear()
    try:
        assert isolation_in_force("auto").name == "hook"
        assert "not a security boundary" in python_exec().description
        with pytest.raises(
            ConfigError, match=r"(?s)'bwrap' does not work.*apt-get install bubblewrap"
        ):
            python_exec(SandboxLimits(isolation="bwrap"))
    finally:
        monkeypatch.undo()
        probe.cache_clear()
