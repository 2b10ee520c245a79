"""Processes in their own pid namespace: the unit that ``syshub trace -- CMD``
and the tests trace. The command is held before ``exec`` until
:meth:`NamespacedProcess.release`, so filters can be installed first and no
call is missed. The helper (``syshub/_nsinit.py``) runs in Python's isolated
mode by absolute path: nothing is imported from the current directory.

The command blocks in its read of the go pipe, the last call before its
``execve``, before the constructor returns, so its trace starts at the
``execve``.

When the creating thread dies (even by SIGKILL) the command dies too
(``PR_SET_PDEATHSIG`` along the chain). Needs root (CAP_SYS_ADMIN)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

from syshub.errors import SyshubError

#: The helper, by absolute path (run with ``python -I``).
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_nsinit.py")


def pid_namespace_inode(pid: int | str = "self", alt_root: str = "/") -> int:
    """Inode of ``/proc/<pid>/ns/pid`` (the key the kernel probe filters on)."""
    return os.stat(os.path.join(alt_root, "proc", str(pid), "ns", "pid")).st_ino


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise SyshubError(f"no parent pid in /proc/{pid}/status")


#: Syscall numbers (x86_64) the held processes block in: the command in
#: ``read`` of the go pipe, the init in ``rt_sigtimedwait``.
NR_PSELECT6 = 270
NR_RT_SIGTIMEDWAIT = 128
#: How long to wait for a held process to block before installing filters anyway.
BLOCK_TIMEOUT = 5.0


def wait_blocked(
    pid: int, nr: int, arg0: int | None = None, timeout: float = BLOCK_TIMEOUT
) -> bool:
    """Wait until ``pid`` sleeps in syscall ``nr`` (with first argument
    ``arg0``), read from ``/proc/PID/syscall``. False when it did not within
    ``timeout`` seconds, exited, or the file cannot be read."""
    want = [str(nr)] if arg0 is None else [str(nr), hex(arg0)]
    end = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            return False
        if fields[: len(want)] == want:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.0005)


def _status(code: int) -> int:
    """Popen's return code in the shell convention (128+N for signal N)."""
    return code if code >= 0 else 128 - code


class NamespacedProcess:
    """``argv`` run in a new pid namespace (needs root).

    By default the command is PID 1 of its namespace (so the namespace holds
    only the command and its descendants). With ``init=True`` a minimal init
    is PID 1 and the command PID 2: the command then keeps normal signal
    semantics (``kill -TERM``, ``kill -9 $$``) and its orphans are reaped.
    ``die_with_parent=False`` lets the command outlive the creating thread.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: int | IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        init: bool = False,
        die_with_parent: bool = True,
    ) -> None:
        if not argv:
            raise ValueError("no command to run")
        # Resolve the program here, so the traced namespace sees one execve.
        search = (env or os.environ).get("PATH", os.defpath)
        path = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=search)
        if path is None:
            raise SyshubError(f"command not found: {argv[0]!r}")
        info_r, info_w = os.pipe()
        go_r, go_w = os.pipe()
        # The hold pipe's write end is closed only to abandon the command.
        hold_r, hold_w = os.pipe()
        me = os.pidfd_open(os.getpid()) if die_with_parent else None
        fds = (info_w, go_r, hold_r) if me is None else (me, info_w, go_r, hold_r)
        helper = [sys.executable, "-I", HELPER, *(["--init"] if init else [])]
        helper += ["-" if me is None else str(me), str(info_w), str(go_r), str(hold_r)]
        helper += ["--", path, *argv]
        try:
            self._relay = subprocess.Popen(
                helper,
                pass_fds=fds,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
        except BaseException:
            for fd in (info_r, go_w, hold_w):
                os.close(fd)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self._go: int | None = go_w
        self._hold_w: int | None = hold_w
        self._released = False
        self._fds: list[int] = []
        with os.fdopen(info_r, "rb") as f:
            line = f.readline().decode().strip()
        if not line.isdigit():
            self._abort()
            reason = line[1:] if line else "the namespace helper exited early"
            raise SyshubError(f"cannot create a pid namespace: {reason}")
        self.pid = int(line)
        """Pid of the command (as this process sees it); PID 1 of its namespace,
        or PID 2 with ``init=True``."""
        try:
            # While held, the command is alive: these fds name the right processes.
            self._pidfd = self._hold(os.pidfd_open(self.pid))
            self.init_pid: int | None = _parent_pid(self.pid) if init else None
            """Pid of the namespace's init (``init=True``), else None."""
            self._init_fd = (
                None if self.init_pid is None else self._hold(os.pidfd_open(self.init_pid))
            )
            # Filters go in once both are asleep in their last call before the
            # command's execve: nothing of the launcher is traced.
            # (Any pselect6: the helper may renumber the pipes below 1024.)
            wait_blocked(self.pid, NR_PSELECT6)
            if self.init_pid is not None:
                wait_blocked(self.init_pid, NR_RT_SIGTIMEDWAIT)
            # Holding the namespace open keeps its inode from being reused by a
            # new namespace (with someone else's processes) while we trace it.
            ns_fd = self._hold(os.open(f"/proc/{self.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
        except (OSError, SyshubError):
            self._abort()
            raise SyshubError("the command in the new pid namespace died before release") from None
        self.pid_ns = os.fstat(ns_fd).st_ino
        """Inode of the command's pid namespace."""

    def _hold(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def _abort(self) -> None:
        self.release_if_unreleased_on_abort()
        with contextlib.suppress(ProcessLookupError):
            self._relay.kill()
        self._relay.wait()
        self.close()

    @property
    def pidfd(self) -> int:
        """A pidfd of the command: readable once it has exited."""
        return self._pidfd

    def release(self) -> None:
        """Let the command ``exec``."""
        if not self._released and self._go is not None:
            self._released = True
            os.write(self._go, b"g")
            os.close(self._go)
            self._go = None

    def release_if_unreleased_on_abort(self) -> None:
        """Close the barrier without ``g``: a held command exits with 125."""
        if not self._released and self._go is not None:
            self._released = True
            self._close_hold()
            os.close(self._go)
            self._go = None

    def _close_hold(self) -> None:
        if self._hold_w is not None:
            os.close(self._hold_w)
            self._hold_w = None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the command (never to a recycled pid)."""
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        """Kill the command and its whole pid namespace (SIGKILL to PID 1)."""
        fd = self._init_fd if self._init_fd is not None else self._pidfd
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Exit status of the command (128+N when killed by signal N); raises
        :class:`subprocess.TimeoutExpired` after ``timeout`` seconds."""
        self.release_if_unreleased_on_abort()
        return _status(self._relay.wait(timeout))

    def poll(self) -> int | None:
        """Exit status if the command has exited (and been reaped), else None."""
        code = self._relay.poll()
        return None if code is None else _status(code)

    def close(self) -> None:
        """Let go of the namespace (its inode may then be reused)."""
        self._close_hold()
        while self._fds:
            os.close(self._fds.pop())

    def __enter__(self) -> NamespacedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.poll() is None:
            self.kill()
        self.wait()
        self.close()
