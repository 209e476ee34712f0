"""The code the ``python`` tool's child process runs before the model's program: confine itself
(``unshare`` mode only), set the process limit, add the audit hook, then run the program.

:mod:`hanlin.agents.tools.sandbox` passes this file's text to ``python -I -c`` with one JSON
argument, so it imports nothing from Hanlin (the package is not visible inside a sandbox).
"""

from __future__ import annotations

import json
import os
import sys

# linux/mount.h, sys/mount.h, linux/prctl.h, linux/capability.h
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
_MOUNT_ATTR_RDONLY, _AT_RECURSIVE, _AT_FDCWD, _SYS_MOUNT_SETATTR = 0x1, 0x8000, -100, 442
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_NOBODY = 65534
_DEVICES = ("null", "zero", "full", "random", "urandom")


def confine(work: str, hide: list[str], keep: list[str], tmp_mb: int) -> None:
    """Inside fresh mount, network and PID namespaces: hide ``hide`` (and ``/tmp``, ``/dev``)
    behind empty tmpfs mounts, re-expose ``work`` (writable) and ``keep`` (read-only), make
    everything else read-only, then give up every privilege (uid ``nobody`` when started as
    root, else no capabilities). Raises OSError if any step fails: the run must not go on."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"sandbox setup failed: {what}: {os.strerror(err)}")

    def mount(
        source: str | None, target: str, fstype: str | None, flags: int, data: str = ""
    ) -> None:
        args = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
        check(
            libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), args[3]), f"mount {target}"
        )

    class MountAttr(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns_fd")]

    def read_only(path: str, on: bool, recursive: bool) -> None:
        attr = MountAttr(_MOUNT_ATTR_RDONLY if on else 0, 0 if on else _MOUNT_ATTR_RDONLY, 0, 0)
        flags = _AT_RECURSIVE if recursive else 0
        long, size = ctypes.c_long, ctypes.c_size_t(ctypes.sizeof(attr))
        at = (long(_AT_FDCWD), path.encode(), long(flags), ctypes.byref(attr), size)
        ret = libc.syscall(long(_SYS_MOUNT_SETATTR), *at)
        check(ret, f"mount_setattr {path}")

    # what must stay visible, opened before anything is hidden; bound back from /proc/self/fd
    visible = [(p, os.open(p, os.O_PATH)) for p in [work, *keep] if os.path.exists(p)]
    devices = [(f"/dev/{d}", os.open(f"/dev/{d}", os.O_PATH)) for d in _DEVICES]
    mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    for path in sorted({*hide, "/tmp"}, key=len):  # parents first; a child may vanish with them
        if os.path.isdir(path) and not os.path.islink(path):
            options = f"mode=1777,size={tmp_mb}m" if path == "/tmp" else "mode=0755,size=1m"
            mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
    mount("tmpfs", "/dev", "tmpfs", _MS_NOSUID, "mode=0755,size=1m")
    for path, fd in devices:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
        mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND)
        os.close(fd)
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"/dev/{name}")
    os.symlink("/proc/self/fd", "/dev/fd")
    for path, fd in visible:
        here = os.stat(path) if os.path.exists(path) else None
        there = os.fstat(fd)
        if here is None or (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
            os.makedirs(path, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)
    read_only("/", True, recursive=True)
    read_only("/tmp", False, recursive=False)
    read_only(work, False, recursive=False)
    os.chdir(work)  # the old working directory is the hidden one, under the real /tmp

    check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    check(libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient capabilities")
    cap = 0
    while libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    if os.geteuid() == 0 and os.path.exists("/proc/self/uid_map"):
        with open("/proc/self/uid_map") as fh:
            real_root = fh.read().split()[:3] == ["0", "0", "4294967295"]
        if real_root:  # no user namespace: become nobody, which drops every capability
            os.setgroups([])
            os.setresgid(_NOBODY, _NOBODY, _NOBODY)
            os.setresuid(_NOBODY, _NOBODY, _NOBODY)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    check(libc.capset(header, (ctypes.c_uint32 * 6)()), "drop capabilities")


def limit_processes(count: int) -> None:
    """``RLIMIT_NPROC`` here rather than before exec: the sandbox launchers fork themselves."""
    import resource

    resource.setrlimit(resource.RLIMIT_NPROC, (count, count))


def add_audit_hook() -> None:
    """Refuse sockets reaching anything, name lookups and starting processes (:pep:`578`).

    Native code (``ctypes``, C extensions) does not raise audit events and so is not stopped."""
    local_names = ("localhost", "127.0.0.1", "::1")
    processes = (
        "subprocess.Popen", "os.system", "os.exec", "os.fork", "os.forkpty",
        "os.posix_spawn", "os.spawn", "pty.spawn",
    )  # fmt: skip

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
            if address is not None:
                raise PermissionError(
                    "network access is disabled in the Hanlin python sandbox "
                    f"(tried to reach {address!r}; no address is allowed, not even this machine)"
                )
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0] if args else None
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if host is not None and str(host) not in local_names:
                raise PermissionError(
                    f"name lookups are disabled in the Hanlin python sandbox (tried {host!r})"
                )
        elif event in ("socket.gethostbyaddr", "socket.getnameinfo"):
            raise PermissionError(
                f"name lookups are disabled in the Hanlin python sandbox ({event} {args[0]!r})"
            )
        elif event in processes:
            raise PermissionError(
                f"starting processes is disabled in the Hanlin python sandbox ({event})"
            )

    sys.addaudithook(hook)


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    script = config["script"]
    if config.get("confine"):
        confine(**config["confine"])
        # this process is PID 1 of the new namespace; the program runs in a child so that its
        # exit status (a signal from a limit included) is reported like bubblewrap does
        pid = os.fork()
        if pid:
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            os._exit(128 - status if status < 0 else status)
    limit_processes(config["max_processes"])
    add_audit_hook()  # last, so that the setup above is not refused by it
    import runpy

    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
