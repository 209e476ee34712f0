"""The ``python`` tool: run model-written code in a child process, isolated from the machine
as far as this OS allows, with resource limits.

Every run, in every mode:

- runs ``sys.executable -I`` (no user site-packages, no ``PYTHON*`` variables) in a fresh
  temporary folder as its working directory, with a minimal environment (no proxy variables,
  ``HOME`` and ``TMPDIR`` in that folder), and ``sandbox_child.py`` before the program;
- sets ``RLIMIT_CPU``, ``RLIMIT_AS`` (virtual memory), ``RLIMIT_FSIZE`` (largest file written —
  stdout and stderr are files too, so a flood of output is cut), ``RLIMIT_CORE`` = 0 and
  ``RLIMIT_NPROC``, and kills the whole process group at the wall-clock limit;
- adds a :pep:`578` audit hook that refuses every socket ``connect``/``sendto``/``sendmsg`` (any
  address: loopback and Unix sockets too), every name lookup but of ``localhost``
  (``gethostbyaddr`` and ``getnameinfo`` included) and starting processes (``subprocess``,
  ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``, ``pty.spawn``).

Isolation, the strongest that works here (probed once per process by running a program under
it; :mod:`hanlin.agents.tools.isolation` holds the modes; ``SandboxLimits.isolation`` names one):

``bwrap`` (bubblewrap)
    New user, network, PID, IPC and UTS namespaces; the network namespace has only its own
    loopback, so nothing on this machine or beyond is reachable, native code included (TCP, UDP,
    abstract Unix sockets). The root holds only ``/usr`` (and ``/bin``, ``/lib*``), a few
    loader files of ``/etc``, and the interpreter's and virtual environment's folders, all
    read-only; a private size-limited ``/tmp``; minimal ``/proc`` and ``/dev``; the work folder
    is the only host folder it can write. Hanlin's folder, the home folders and every other file
    are absent. All capabilities are dropped; it dies with its parent.
``unshare`` (util-linux)
    New network (no interface up), mount, PID, IPC and UTS namespaces, and a user namespace when
    Hanlin is not root. The child hides ``HANLIN_HOME``, the user's home, ``/home``, ``/root``,
    ``/run``, ``/var/tmp``, ``/mnt``, ``/media``, ``/srv``, ``/tmp`` and ``/dev`` behind empty
    tmpfs mounts (re-binding the interpreter and the work folder), makes every other mount
    read-only, then gives up its privileges: ``nobody`` when started as root, no capabilities
    otherwise, ``no_new_privs`` always. Unlike ``bwrap``, the rest of the file system stays
    readable (read-only) as far as that user may read it, and path-based Unix sockets outside
    the hidden folders could still be reached.
``hook``
    No isolation: the audit hook and the limits are all there is, which is a guard against
    accidents and runaway code, not a security boundary. Native code gets past the hook —
    ``ctypes`` calling libc ``connect()``/``sendto()``/``system()``, a C extension, writing to
    ``/proc/self/mem`` — and so reaches loopback services (the keyless local Hanlin API
    included), the network and other processes; the program runs as Hanlin's user and can read
    and write every file that user can (``HANLIN_HOME`` with its API keys included).

Not stopped in any mode: ``RLIMIT_AS`` limits virtual, not resident, memory and is not a
cgroup limit; ``RLIMIT_NPROC`` is not enforced for root (the audit hook, and in the isolated
modes the PID namespace, are what contain processes); kernel exploits (no seccomp filter); time
spent sleeping below the wall-clock limit. The tool's description tells the model which mode
is in force, in the words of ``Isolation.summary``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hanlin.agents.tools.base import AgentTool, ToolResult, tool
from hanlin.agents.tools.isolation import ISOLATIONS, Isolation, IsolationMode
from hanlin.errors import ConfigError

_CHILD = (Path(__file__).parent / "sandbox_child.py").read_text("utf-8")
# the probe's program: the interpreter's folders are readable, and an isolated one sees no
# network interface but loopback
_PROBE = """
import os, socket, sys
unreadable = [p for p in sys.path if os.path.isdir(p) and not os.access(p, os.R_OK | os.X_OK)]
interfaces = sorted(name for _, name in socket.if_nameindex())
print("unreadable", unreadable, "interfaces", interfaces)
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
    #: ``auto`` takes the strongest that works here; naming one makes its absence an error
    isolation: IsolationMode = "auto"


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


def _limiter(limits: SandboxLimits, launched: bool) -> Callable[[], None]:
    def apply() -> None:
        mb = 1 << 20
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if not launched:  # a launcher forks: the child sets its own limit (sandbox_child.py)
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return apply


def _read(fh: IO[bytes], limit: int) -> str:
    fh.seek(0)
    raw = fh.read(limit * 4 + 4)
    text = raw.decode("utf-8", errors="replace")
    size = os.fstat(fh.fileno()).st_size
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
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead
    if code == -signal.SIGXFSZ or "OSError: [Errno 27] File too large" in run.stderr:
        return f"killed: output or file size limit of {limits.file_mb} MB exceeded"
    if "MemoryError" in run.stderr or code == -signal.SIGSEGV:
        return f"stopped: memory limit of {limits.memory_mb} MB exceeded"
    if code is not None and code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return None


def _exit_code(code: int | None, isolation: Isolation) -> int | None:
    # bubblewrap and unshare exit with 128 + N when the program is killed by signal N
    if code is not None and isolation.isolated and 128 < code < 128 + 65:
        return -(code - 128)
    return code


def run_python(
    code: str, limits: SandboxLimits | None = None, isolation: Isolation | None = None
) -> SandboxRun:
    """Run ``code`` in the sandbox described in the module docstring and wait for it.

    ``isolation`` defaults to :func:`isolation_in_force` for ``limits.isolation``, which raises
    :class:`hanlin.errors.ConfigError` when a named mode is unavailable here.
    """
    limits = limits or SandboxLimits()
    isolation = isolation or isolation_in_force(limits.isolation)
    tmp_mb = max(4 * limits.file_mb, 16)
    # output goes to unnamed files outside the work folder: a program that swaps a named one for
    # a symlink must not make Hanlin read a file the sandbox hid from it
    with (
        tempfile.TemporaryDirectory(prefix="hanlin-sandbox-", ignore_cleanup_errors=True) as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        work = Path(tmp)
        script = work / "main.py"
        script.write_text(code, "utf-8")
        isolation.prepare(work)
        config = {
            "script": str(script),
            "max_processes": limits.max_processes,
            "confine": isolation.confine(work, tmp_mb),
        }
        launcher = isolation.launcher(work, tmp_mb)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "no_proxy": "*",
            "NO_PROXY": "*",
            # math libraries run on the calling thread: RLIMIT_NPROC counts threads too
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        proc = subprocess.Popen(
            [*launcher, sys.executable, "-I", "-c", _CHILD, json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=tmp,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=_limiter(limits, launched=bool(launcher)),
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
            stdout=_read(out, limits.max_output_chars),
            stderr=_read(err, limits.max_output_chars),
            returncode=_exit_code(proc.returncode, isolation),
            timed_out=timed_out,
        )
    run.reason = _reason(run, limits)
    return run


@functools.cache
def probe(name: str) -> str | None:
    """Run a small program under isolation ``name``: None if it works here, else why not.

    Done once per process: namespaces can be forbidden by the kernel or a container, and a
    missing ``bwrap`` only shows when it is started.
    """
    isolation = ISOLATIONS[name]
    limits = SandboxLimits(wall_seconds=30, cpu_seconds=30)
    try:
        run = run_python(_PROBE, limits, isolation)
    except OSError as exc:  # the launcher is not installed
        return f"{type(exc).__name__}: {exc}"
    expected = "unreadable [] interfaces " + ("['lo']" if isolation.isolated else "")
    if run.ok and run.stdout.startswith(expected):
        return None
    return (run.reason or f"exit code {run.returncode}") + f": {(run.stderr or run.stdout)[-500:]}"


def isolation_in_force(mode: IsolationMode = "auto") -> Isolation:
    """The isolation a run gets: ``auto`` is the strongest that works here (the audit hook
    alone at worst); a named mode that does not work raises :class:`ConfigError`."""
    if mode == "auto":
        return next(i for i in ISOLATIONS.values() if not i.isolated or probe(i.name) is None)
    if mode not in ISOLATIONS:
        raise ConfigError(
            f"unknown python sandbox isolation {mode!r}",
            hint=f"use one of: auto, {', '.join(ISOLATIONS)}",
        )
    failure = probe(mode)
    if failure is not None:
        raise ConfigError(
            f"python sandbox isolation {mode!r} does not work on this machine: {failure}",
            hint="install bubblewrap (`apt-get install bubblewrap`), allow unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1), or use isolation 'auto'",
        )
    return ISOLATIONS[mode]


def python_exec(limits: SandboxLimits | None = None) -> AgentTool:
    """The ``python`` tool (side effect ``exec``): runs code with :func:`run_python`.

    The isolation is chosen here, once, and its summary ends the tool's description, so the
    model is told what is actually in force. Raises ConfigError if a named mode is unavailable.
    """
    limits = limits or SandboxLimits()
    isolation = isolation_in_force(limits.isolation)

    @tool(name="python", side_effects=("exec",), timeout=limits.wall_seconds + 15)
    def python(code: str) -> ToolResult:
        """Run a Python 3 program and return what it printed (stdout and stderr).

        The program runs in a fresh folder as its current folder, with limits on CPU time,
        memory and wall-clock time; print the results you need.

        Args:
            code: the complete program to run
        """
        run = run_python(code, limits, isolation)
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
            "isolation": isolation.name,
        }
        return ToolResult("\n".join(parts), not run.ok, data)

    python.description = f"{python.description} {isolation.summary}"
    return python


__all__ = [
    "SandboxLimits",
    "SandboxRun",
    "isolation_in_force",
    "probe",
    "python_exec",
    "run_python",
]
