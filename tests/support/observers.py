"""Run an observer in a thread and record what it reports (events and ``on_synced``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from syshub.topology import Container, ContainerEvent, ContainerEventKind, Observer

START, STOP = ContainerEventKind.START, ContainerEventKind.STOP


def event_for(kind: ContainerEventKind, cid: str) -> Callable[[ContainerEvent], bool]:
    return lambda ev: ev.kind is kind and ev.container.id == cid


class Recorder:
    """An ``emit`` callback that keeps every event, and an ``on_synced`` callback that
    remembers how many events had been emitted when it was called (and how often)."""

    def __init__(self) -> None:
        self.events: list[ContainerEvent] = []
        self.synced_calls = 0
        self.events_at_sync: int | None = None
        self._cond = threading.Condition()

    def __call__(self, event: ContainerEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def on_synced(self) -> None:
        with self._cond:
            self.synced_calls += 1
            if self.events_at_sync is None:
                self.events_at_sync = len(self.events)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Recorder], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_event(
        self, pred: Callable[[ContainerEvent], bool], timeout: float = 10.0
    ) -> ContainerEvent:
        """The first event satisfying ``pred`` (AssertionError after ``timeout``)."""
        found: list[ContainerEvent] = []

        def seen(r: Recorder) -> bool:
            found[:] = [ev for ev in r.events if pred(ev)][:1]
            return bool(found)

        if not self.wait_for(seen, timeout):
            raise AssertionError(f"no matching event within {timeout}s; got {self.events}")
        return found[0]

    def wait_synced(self, timeout: float = 10.0) -> int:
        """Wait for ``on_synced``; the number of events emitted before it."""
        assert self.wait_for(lambda r: r.synced_calls > 0, timeout), "on_synced never called"
        assert self.events_at_sync is not None
        return self.events_at_sync

    def drain(self, seconds: float) -> list[ContainerEvent]:
        """Let ``seconds`` pass; every event so far."""
        time.sleep(seconds)
        with self._cond:
            return list(self.events)

    def of(self, kind: ContainerEventKind) -> list[Container]:
        with self._cond:
            return [e.container for e in self.events if e.kind is kind]

    def names(self, kind: ContainerEventKind) -> list[str]:
        return [f"{c.pod}/{c.name}" for c in self.of(kind)]

    def active(self) -> set[str]:
        """pod/container of containers started and not stopped since."""
        live: dict[str, str] = {}
        with self._cond:
            for e in self.events:
                if e.kind is START:
                    live[e.container.id] = f"{e.container.pod}/{e.container.name}"
                else:
                    live.pop(e.container.id, None)
        return set(live.values())

    def count(self) -> int:
        with self._cond:
            return len(self.events)


class Running:
    """``observer.run(rec, stop, on_synced=rec.on_synced)`` in a thread.

    As a context manager it yields the recorder and, on a clean exit, checks that
    ``run`` returned after ``stop`` without raising and called ``on_synced`` at most once.
    """

    def __init__(self, observer: Observer) -> None:
        self.rec = Recorder()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(observer,), daemon=True)
        self.thread.start()

    def _run(self, observer: Observer) -> None:
        try:
            observer.run(self.rec, self.stop, on_synced=self.rec.on_synced)
        except BaseException as exc:  # recorded; halt() asserts there is none
            self.error = exc

    def halt(self, timeout: float = 10.0) -> float:
        """Set ``stop``, wait for ``run`` to return; the seconds that took."""
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run() did not return after stop"
        assert self.error is None, f"run() raised {self.error!r}"
        assert self.rec.synced_calls <= 1, f"on_synced called {self.rec.synced_calls} times"
        return time.monotonic() - t0

    def __enter__(self) -> Recorder:
        return self.rec

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:  # do not mask the test's own failure
            self.halt()
        else:
            self.stop.set()
            self.thread.join(10)
