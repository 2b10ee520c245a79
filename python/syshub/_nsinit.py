"""Start a command in a new pid namespace, held until released.

Run by :mod:`syshub.nsproc` as ``python -I /abs/path/_nsinit.py [--init]
PARENT_FD INFO_FD GO_FD -- EXE ARGV0 [ARGS...]``: isolated mode and an
absolute path, so no module is ever imported from the current directory (this
runs as root). Standard library only. Needs CAP_SYS_ADMIN (unshare).

Processes::

    tracer -> helper (this script, in the tracer's pid namespace)
                -> [--init] init (PID 1 of the new namespace) -> command (PID 2)
                -> [no --init] command (PID 1 of the new namespace)

* Every process of the chain gets ``PR_SET_PDEATHSIG(SIGKILL)`` tied to its
  parent (the helper to the tracer, whose pidfd is PARENT_FD, or ``-`` for
  none), and checks that the parent is still alive after setting it: when the
  tracer dies, even by SIGKILL, the command dies too, never running untraced.
* The command writes its pid as the tracer sees it (``/proc/self``) on
  INFO_FD, then waits for one byte ``g`` on GO_FD before ``exec`` so the
  tracer can install its filters first; EOF instead of ``g`` exits with 125.
  Reading GO_FD is its last call before ``execve`` (signal dispositions are
  set before, GO_FD closes on exec): the tracer installs its filters once
  the command is blocked in that read (``/proc/PID/syscall``), so the
  command's trace starts at its ``execve``.
* With ``--init`` the command keeps normal signal semantics (the kernel
  ignores signals without a handler only for PID 1): the init relays the
  signals sent to it to the command, except those the kernel raised for the
  terminal (they reach the command directly, it is in the same process
  group), reaps orphans and exits when the command does. Exiting as PID 1
  makes the kernel kill what is left in the namespace.
* Exit status: the command's, or 128+N when signal N killed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
#: ``si_code`` of a signal the kernel sent (terminal keys, hangup).
SI_KERNEL = 0x80
#: Exit status when the parent was already gone, or the go byte never came.
EXIT_ABANDONED = 125
#: Signals the helper ignores: the terminal sends them to the command itself,
#: the tracer forwards them; the helper must live until the command is gone.
HELPER_IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)
#: Signals Python itself sets to SIG_IGN; the command gets them as default.
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)
#: Signals the init relays to the command: every catchable signal but SIGCHLD.
RELAYED = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int | bytes) -> None:
    value = ctypes.c_char_p(arg) if isinstance(arg, bytes) else ctypes.c_ulong(arg)
    if _libc.prctl(option, value, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _die_with(parent_fd: int) -> None:
    """Be killed when the parent dies; leave now if it already has (its pidfd
    is readable once it exited)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([parent_fd], [], [], 0)[0]:
        os._exit(EXIT_ABANDONED)
    os.close(parent_fd)


def exit_code(wait_status: int) -> int:
    """Shell convention: the exit code, or 128+N for a death by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


@dataclass(frozen=True)
class Launch:
    """What the command needs: the pipes to the tracer, what to exec, and the
    signal dispositions the helper inherited (True: ignored)."""

    info_fd: int
    go_fd: int
    hold_fd: int
    exe: str
    argv: list[str]
    inherited: dict[signal.Signals, bool]


def _child(body: Callable[[Launch], None], parent_fd: int, launch: Launch) -> NoReturn:
    """A forked process of the chain: tied to its parent, runs ``body``,
    never returns into the caller's code."""
    try:
        _die_with(parent_fd)
        body(launch)
    except OSError as e:
        sys.stderr.write(f"syshub: cannot run {launch.exe!r}: {e.strerror}\n")
    finally:
        os._exit(127)


def _command(launch: Launch) -> None:
    """Set up everything, report the pid, wait for the go byte, exec. The wait
    (a ``pselect6`` on the go and hold pipes) is the last call before
    ``execve``: the tracer waits until the command blocks in it before
    installing its filters, and the probe sees ``pselect6`` at entry (a call
    with in/out structs), so a wait that began before the filters is not
    recorded and the command's trace starts at its ``execve``. The go byte is
    not read (a read would be traced): the hold pipe, which the tracer closes
    only to abandon the command, tells go from abandon (both close on exec)."""
    for py in PYTHON_IGNORED:
        signal.signal(py, signal.SIG_DFL)
    for s, ignored in launch.inherited.items():
        signal.signal(s, signal.SIG_IGN if ignored else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    os.set_inheritable(launch.go_fd, False)
    os.set_inheritable(launch.hold_fd, False)
    os.write(launch.info_fd, f"{os.readlink('/proc/self')}\n".encode())
    os.close(launch.info_fd)
    ready = select.select([launch.go_fd, launch.hold_fd], [], [])[0]
    if launch.hold_fd in ready or launch.go_fd not in ready:
        os._exit(EXIT_ABANDONED)
    os.execv(launch.exe, launch.argv)


def _init(launch: Launch) -> None:
    """PID 1 of the namespace: start the command, relay signals, reap."""
    # Local observers name a namespace after its first process.
    _prctl(PR_SET_NAME, os.path.basename(launch.exe).encode()[:15] or b"init")
    # Blocked before the fork: no SIGCHLD can be missed; sigwaitinfo takes them.
    signal.pthread_sigmask(signal.SIG_BLOCK, [*RELAYED, signal.SIGCHLD])
    me = os.pidfd_open(os.getpid())
    child = os.fork()
    if child == 0:
        _child(_command, me, launch)
    os.close(me)
    os.close(launch.info_fd)
    os.close(launch.go_fd)
    os.close(launch.hold_fd)
    os._exit(_relay_and_reap(child))


def _relay_and_reap(child: int) -> int:
    while True:
        info = signal.sigwaitinfo([*RELAYED, signal.SIGCHLD])
        if info.si_signo != signal.SIGCHLD:
            if info.si_code != SI_KERNEL:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, info.si_signo)
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return EXIT_ABANDONED
            if pid == 0:
                break
            if pid == child:
                return exit_code(status)


def _low(fd: int) -> int:
    """The same open file at the lowest free number if that is lower: the
    numbers passed in are the starter's, past 1024 in a busy process, and the
    command's wait (``select``) refuses such numbers."""
    new = os.dup(fd)
    if new < fd:
        os.close(fd)
        return new
    os.close(new)
    return fd


def main(argv: list[str]) -> int:
    init = bool(argv) and argv[0] == "--init"
    if init:
        argv = argv[1:]
    if len(argv) < 7 or argv[4] != "--":
        sys.stderr.write(
            "usage: _nsinit.py [--init] PARENT_FD INFO_FD GO_FD HOLD_FD -- EXE ARGV0 [ARGS...]\n"
        )
        return 2
    info_fd, go_fd, hold_fd = (_low(int(a)) for a in argv[1:4])
    exe, cmd = argv[5], argv[6:]
    if argv[0] != "-":
        _die_with(_low(int(argv[0])))
    launch = Launch(
        info_fd,
        go_fd,
        hold_fd,
        exe,
        cmd,
        {s: signal.getsignal(s) == signal.SIG_IGN for s in HELPER_IGNORED},
    )
    for s in HELPER_IGNORED:
        signal.signal(s, signal.SIG_IGN)
    if _libc.unshare(CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        os.write(info_fd, f"E{err} {os.strerror(err)}\n".encode())
        return 126
    me = os.pidfd_open(os.getpid())
    pid = os.fork()
    if pid == 0:
        _child(_init if init else _command, me, launch)
    os.close(me)
    os.close(go_fd)
    os.close(hold_fd)
    os.close(info_fd)
    _, status = os.waitpid(pid, 0)
    return exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
