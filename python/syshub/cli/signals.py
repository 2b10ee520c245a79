"""How ``syshub trace`` takes SIGINT, SIGTERM and SIGHUP.

The signals are blocked in every thread (the Hub's threads inherit the mask,
so none of them is interrupted) and the main loop collects them with
``sigtimedwait``: a signal never interrupts a write half-way, so every event
read is printed and counted. Collecting them also gives ``si_code``: a signal
the kernel raised for the terminal (Ctrl-C, hangup) already reached the
traced command, which is in the same process group; any other one (``kill``)
is forwarded to the command. Signals ignored when syshub started (``nohup``)
stay ignored.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

#: Signals that stop a trace (exit status 128+N).
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: ``si_code`` of a signal raised by the kernel (terminal keys, hangup).
SI_KERNEL = 0x80


class Interrupted(Exception):
    """A stopping signal arrived before tracing began."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGate:
    """Blocks the stopping signals; hands them out one poll at a time."""

    def __init__(self) -> None:
        self.signals = tuple(s for s in STOPPING if signal.getsignal(s) != signal.SIG_IGN)
        self.received: int | None = None
        """The first stopping signal (None until one arrives)."""
        self.forward: Callable[[int], None] | None = None
        """Called with a signal to pass on to the traced command."""
        self._old: set[int | signal.Signals] | None = None

    def __enter__(self) -> SignalGate:
        self._old = set(signal.pthread_sigmask(signal.SIG_BLOCK, self.signals))
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever is still pending is dropped: syshub is leaving.
        while self.signals and signal.sigtimedwait(self.signals, 0) is not None:
            pass
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)

    def poll(self) -> int | None:
        """Take pending stopping signals (forwarding the ones the terminal did
        not send to the command too); the first one ever received, or None."""
        while self.signals:
            info = signal.sigtimedwait(self.signals, 0)
            if info is None:
                break
            if self.received is None:
                self.received = info.si_signo
            if self.forward is not None and info.si_code != SI_KERNEL:
                self.forward(info.si_signo)
        return self.received

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stopping signal has arrived."""
        signum = self.poll()
        if signum is not None:
            raise Interrupted(signum)
