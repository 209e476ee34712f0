"""How the ``python`` tool's child process is kept away from the machine, strongest first:
bubblewrap, util-linux ``unshare``, or only an audit hook. Each mode is a registry entry that
builds the launcher command line and says, in words for the model, what it enforces.

:func:`hanlin.agents.tools.sandbox.isolation_in_force` picks one by actually running a program
under it, since namespaces can be forbidden by the kernel or a container.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from hanlin.paths import hanlin_home

IsolationMode = Literal["auto", "bwrap", "unshare", "hook"]
_NOBODY = 65534
# what a program run from the read-only system needs from /etc: the loader's cache, alternatives'
# symlinks (BLAS and friends), the time zone
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone")
# holds the users' own files, others' sockets (/run) and shared temporary files
_PRIVATE = ("/home", "/root", "/run", "/var/tmp", "/mnt", "/media", "/srv")


def python_paths() -> list[str]:
    """The folders the interpreter (and its virtual environment) lives in, outermost only."""
    found = {
        str(p)
        for d in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        for p in (Path(d), Path(d).resolve())
    }
    found.add(str(Path(sys.executable).resolve().parent))
    return sorted(p for p in found if not any(_inside(p, q) for q in found if q != p))


def private_paths() -> list[str]:
    """What a sandbox must not show: the Hanlin folder, the user's home, other users' homes."""
    mine = {str(hanlin_home().resolve()), str(Path.home().resolve())}
    return sorted(mine | {p for p in _PRIVATE if Path(p).is_dir()})


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Isolation:
    """One way to run the child: ``launcher`` goes before the interpreter's command line,
    ``confine`` is what the child sets up itself (see ``sandbox_child.confine``)."""

    name: ClassVar[str]
    isolated: ClassVar[bool]
    #: what is in force, in words for the model (part of the tool's description)
    summary: ClassVar[str]

    def launcher(self, work: Path, tmp_mb: int) -> list[str]:
        return []

    def confine(self, work: Path, tmp_mb: int) -> dict[str, Any] | None:
        return None

    def prepare(self, work: Path) -> None:
        """Called on the work folder before the run (after the program is written there)."""


class Bubblewrap(Isolation):
    """``bwrap``: new user, network, PID, IPC and UTS namespaces; a root made only of read-only
    system folders and the interpreter, a private ``/tmp``, minimal ``/proc`` and ``/dev``."""

    name = "bwrap"
    isolated = True
    summary = (
        "It runs in an isolated sandbox (bubblewrap): there is no network at all, not even to "
        "services on this machine, and none of the user's files are visible: only the "
        "system's programs and libraries (read-only) and the current folder, which is a "
        "private, initially empty temporary folder."
    )

    def launcher(self, work: Path, tmp_mb: int) -> list[str]:
        bwrap = shutil.which("bwrap") or "bwrap"
        argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        bound = ["/usr"]
        argv += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                argv += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                argv += ["--ro-bind", top, top]
                bound.append(top)
        for name in _ETC:
            argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for path in python_paths():
            argv += ["--ro-bind", path, path]
            bound.append(path)
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(tmp_mb << 20), "--tmpfs", "/tmp"]
        argv += ["--bind", str(work), str(work), "--chdir", str(work)]
        # a private folder that sits inside a bound one (a Hanlin home inside the venv) is covered
        for path in private_paths():
            if any(_inside(path, b) for b in bound) and Path(path).is_dir():
                argv += ["--tmpfs", path]
        return [*argv, "--"]


class Unshare(Isolation):
    """util-linux ``unshare``: new network (no interfaces), mount, PID, IPC and UTS namespaces
    (and a user namespace when not root); the child hides private folders itself."""

    name = "unshare"
    isolated = True
    summary = (
        "It runs in an isolated sandbox (Linux namespaces): there is no network at all, not "
        "even to services on this machine; the user's home folder, Hanlin's data folder and "
        "other programs' temporary files are hidden, the rest of the system is read-only, and "
        "the current folder is a private temporary folder."
    )

    def launcher(self, work: Path, tmp_mb: int) -> list[str]:
        unshare = shutil.which("unshare") or "unshare"
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        spaces = ["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
        return [unshare, *user, *spaces, "--ipc", "--uts", "--"]

    def confine(self, work: Path, tmp_mb: int) -> dict[str, Any]:
        return {
            "work": str(work),
            "hide": private_paths(),
            "keep": python_paths(),
            "tmp_mb": tmp_mb,
        }

    def prepare(self, work: Path) -> None:
        if os.geteuid() == 0:  # the child becomes nobody, who must own its work folder
            for path in (work, *work.iterdir()):
                os.chown(path, _NOBODY, _NOBODY)


class AuditHookOnly(Isolation):
    """No isolation: the child's audit hook (and resource limits) are all there is."""

    name = "hook"
    isolated = False
    summary = (
        "Best-effort guard only, not a security boundary: network connections, name lookups "
        "and starting programs are refused by a Python audit hook, which native code (ctypes, "
        "C extensions) can get around, and the program can read and write the same files as "
        "Hanlin itself. Do not try to use the network or files outside the current folder."
    )


#: every mode by name, strongest first: ``auto`` takes the first that works here
ISOLATIONS: dict[str, Isolation] = {
    mode.name: mode for mode in (Bubblewrap(), Unshare(), AuditHookOnly())
}

__all__ = [
    "ISOLATIONS",
    "AuditHookOnly",
    "Bubblewrap",
    "Isolation",
    "IsolationMode",
    "Unshare",
    "private_paths",
    "python_paths",
]
