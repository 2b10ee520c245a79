"""Processes in their own pid namespace: the unit that `syshub trace -- CMD`
and the tests trace. The command is held before ``exec`` until
:meth:`NamespacedProcess.release`, so filters can be installed first and no
call is missed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from syshub.errors import SyshubError


def pid_namespace_inode(pid: int | str = "self", alt_root: str = "/") -> int:
    """Inode of ``/proc/<pid>/ns/pid`` (the key the kernel probe filters on)."""
    return os.stat(os.path.join(alt_root, "proc", str(pid), "ns", "pid")).st_ino


class NamespacedProcess:
    """``argv`` run as PID 1 of a new pid namespace (needs root)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: int | IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("no command to run")
        # Resolve the program here, so the traced namespace sees one execve.
        path = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if path is None:
            raise SyshubError(f"command not found: {argv[0]!r}")
        argv = [path, *argv]  # executable, then argv as given
        info_r, info_w = os.pipe()
        go_r, go_w = os.pipe()
        try:
            self._relay = subprocess.Popen(
                [sys.executable, "-m", "syshub._nsinit", str(info_w), str(go_r), "--", *argv],
                pass_fds=(info_w, go_r),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
        finally:
            os.close(info_w)
            os.close(go_r)
        self._go = go_w
        with os.fdopen(info_r, "rb") as f:
            line = f.readline().decode().strip()
        if not line or line.startswith("E"):
            os.close(go_w)
            self._relay.wait()
            reason = line[1:] if line else "the namespace helper exited early"
            raise SyshubError(f"cannot create a pid namespace: {reason}")
        self.pid = int(line)
        """Host pid of the command (PID 1 inside its namespace)."""
        # Holding the namespace open keeps its inode from being reused by a
        # new namespace (with someone else's processes) while we trace it.
        self._ns_fd: int | None = os.open(f"/proc/{self.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.pid_ns = os.fstat(self._ns_fd).st_ino
        """Inode of the command's pid namespace."""
        self._released = False

    def release(self) -> None:
        """Let the command ``exec``."""
        if not self._released:
            self._released = True
            os.write(self._go, b"g")
            os.close(self._go)

    def wait(self, timeout: float | None = None) -> int:
        """Exit status of the command (128+N when killed by signal N)."""
        self.release_if_unreleased_on_abort()
        return self._relay.wait(timeout)

    def poll(self) -> int | None:
        return self._relay.poll()

    def release_if_unreleased_on_abort(self) -> None:
        if not self._released:
            # Closing the barrier without "g" makes the command exit with 125.
            self._released = True
            os.close(self._go)

    def kill(self) -> None:
        """Kill the command (and with it its whole pid namespace)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, 9)

    def __enter__(self) -> NamespacedProcess:
        return self

    def close(self) -> None:
        """Let go of the namespace (its inode may then be reused)."""
        if self._ns_fd is not None:
            os.close(self._ns_fd)
            self._ns_fd = None

    def __exit__(self, *exc: object) -> None:
        if self.poll() is None:
            self.kill()
        self.wait()
        self.close()
