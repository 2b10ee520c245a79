"""Run a command as PID 1 of a new pid namespace, held until released.

Executed as ``python -m syshub._nsinit INFO_FD GO_FD -- EXE ARGV0 [ARGS...]`` in a
fresh interpreter (never forked from a process that runs the reader thread).
This process unshares CLONE_NEWPID, forks the command (PID 1 of the new
namespace), writes the command's host pid to INFO_FD, and relays its exit
status. The command waits for one byte ``g`` on GO_FD before ``exec``, so the
tracer can install its filters first. Needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[2] != "--":
        sys.stderr.write("usage: python -m syshub._nsinit INFO_FD GO_FD -- EXE ARGV0 [ARGS...]\n")
        return 2
    info_fd, go_fd = int(argv[0]), int(argv[1])
    exe, cmd = argv[3], argv[4:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        os.write(info_fd, f"E{err} {os.strerror(err)}\n".encode())
        return 126
    pid = os.fork()
    if pid == 0:
        os.close(info_fd)
        go = os.read(go_fd, 1)
        os.close(go_fd)
        if go != b"g":
            os._exit(125)
        try:
            os.execv(exe, cmd)
        except OSError as e:
            sys.stderr.write(f"syshub: cannot run {exe!r}: {e.strerror}\n")
            os._exit(127)
    os.close(go_fd)
    os.write(info_fd, f"{pid}\n".encode())
    os.close(info_fd)

    def relay(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, relay)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
