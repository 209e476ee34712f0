"""The ``python`` tool: run model-written code in a child process with resource limits.

What it does:

- runs the code with ``sys.executable -I`` (isolated mode: no user site-packages, no
  ``PYTHON*`` environment variables) in a fresh temporary folder as its working directory, with
  a minimal environment (no proxy variables, ``HOME`` in the temporary folder);
- sets ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (address space, i.e. memory),
  ``RLIMIT_FSIZE`` (largest file it may write — stdout and stderr are files too, so a flood of
  output is cut), ``RLIMIT_CORE`` = 0 and ``RLIMIT_NPROC`` before the code starts;
- kills the whole process group when the wall-clock limit passes;
- installs an audit hook (:pep:`578`) before the code runs that refuses socket connections,
  ``sendto`` and name lookups to anything but loopback, and refuses starting processes
  (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``).

What it does NOT protect against — this is a guard against accidents and runaway code, not a
security boundary like a container, a VM, seccomp or a separate user:

- the code runs as the same user as Hanlin and can read and write every file that user can
  (``~/.hanlin`` with API keys included), outside its working folder too;
- audit hooks are bypassed by native code: ``ctypes`` calling libc ``connect()`` or
  ``execve()``, a C extension, or writing to ``/proc/self/mem``;
- ``RLIMIT_NPROC`` is counted per user and not enforced for root, so the process limit rests on
  the audit hook alone when Hanlin runs as root;
- ``RLIMIT_AS`` limits virtual memory, not resident memory, and is not a cgroup limit;
- nothing limits disk space used by many small files, or time spent sleeping below the wall
  clock limit.

Run untrusted code in a container (or a VM) if it may be hostile.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hanlin.agents.tools.base import AgentTool, ToolResult, tool

# Runs in the child before the user's code: the audit hook cannot be removed once added.
_BOOTSTRAP = r"""
import sys

def _sandbox_hook(event, args, _loopback=("127.0.0.1", "::1", "localhost")):
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and str(address[0]) not in _loopback:
            raise PermissionError(
                "network access is disabled in the Hanlin python sandbox "
                f"(tried to reach {address[0]!r}; only loopback is allowed)"
            )
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0] if args else None
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None and str(host) not in _loopback:
            raise PermissionError(
                f"name lookups are disabled in the Hanlin python sandbox (tried {host!r})"
            )
    elif event in (
        "subprocess.Popen", "os.system", "os.exec", "os.fork", "os.forkpty",
        "os.posix_spawn", "os.spawn", "pty.spawn",
    ):
        raise PermissionError(
            f"starting processes is disabled in the Hanlin python sandbox ({event})"
        )

sys.addaudithook(_sandbox_hook)
del _sandbox_hook
_path = sys.argv[1]
sys.argv = [_path]
import runpy
runpy.run_path(_path, run_name="__main__")
"""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits for one run: seconds of wall clock and CPU, memory and file sizes in MB."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 512
    file_mb: int = 16
    max_processes: int = 0
    max_output_chars: int = 10_000


@dataclass(slots=True)
class SandboxRun:
    """What a run produced and why it ended."""

    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool = False
    reason: str | None = None  # why it was stopped, in words, or None for a normal exit

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _limiter(limits: SandboxLimits) -> Callable[[], None]:
    def apply() -> None:
        mb = 1 << 20
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return apply


def _read(path: Path, limit: int) -> str:
    with path.open("rb") as fh:
        raw = fh.read(limit * 4 + 4)
    text = raw.decode("utf-8", errors="replace")
    size = path.stat().st_size
    if len(text) > limit or size > len(raw):
        text = text[:limit] + f"\n[truncated: output was {size} bytes]"
    return text


def _reason(run: SandboxRun, limits: SandboxLimits) -> str | None:
    if run.timed_out:
        return f"killed: wall-clock limit of {limits.wall_seconds:g} s exceeded"
    code = run.returncode
    # past the soft CPU limit the kernel sends SIGXCPU, past the hard one SIGKILL
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"killed: CPU time limit of {limits.cpu_seconds} s exceeded"
    if code == -signal.SIGXFSZ:
        return f"killed: output or file size limit of {limits.file_mb} MB exceeded"
    if "MemoryError" in run.stderr or code == -signal.SIGSEGV:
        return f"stopped: memory limit of {limits.memory_mb} MB exceeded"
    if code is not None and code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return None


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxRun:
    """Run ``code`` in the sandbox described in the module docstring and wait for it."""
    limits = limits or SandboxLimits()
    with tempfile.TemporaryDirectory(prefix="hanlin-sandbox-") as tmp:
        work = Path(tmp)
        script = work / "main.py"
        script.write_text(code, "utf-8")
        out_path, err_path = work / ".stdout", work / ".stderr"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "no_proxy": "*",
            "NO_PROXY": "*",
        }
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOTSTRAP, str(script)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=tmp,
                env=env,
                start_new_session=True,  # its own process group, killed as a whole
                preexec_fn=_limiter(limits),
                close_fds=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        run = SandboxRun(
            stdout=_read(out_path, limits.max_output_chars),
            stderr=_read(err_path, limits.max_output_chars),
            returncode=proc.returncode,
            timed_out=timed_out,
        )
    run.reason = _reason(run, limits)
    return run


def python_exec(limits: SandboxLimits | None = None) -> AgentTool:
    """The ``python`` tool (side effect ``exec``): runs code with :func:`run_python`."""
    limits = limits or SandboxLimits()

    @tool(name="python", side_effects=("exec",), timeout=limits.wall_seconds + 15)
    def python(code: str) -> ToolResult:
        """Run a Python 3 program and return what it printed (stdout and stderr).

        The program runs in a fresh folder without network access, with limits on CPU time,
        memory and wall-clock time; print the results you need.

        Args:
            code: the complete program to run
        """
        run = run_python(code, limits)
        parts = [run.reason or f"exit code {run.returncode}"]
        if run.stdout:
            parts.append(f"--- stdout ---\n{run.stdout}")
        if run.stderr:
            parts.append(f"--- stderr ---\n{run.stderr}")
        data = {
            "returncode": run.returncode,
            "stdout": run.stdout,
            "stderr": run.stderr,
            "reason": run.reason,
        }
        return ToolResult("\n".join(parts), not run.ok, data)

    return python


__all__ = ["SandboxLimits", "SandboxRun", "python_exec", "run_python"]
