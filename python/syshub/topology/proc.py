"""Observers without a cluster: :class:`LocalObserver`, fed by hand (tests,
``syshub trace``), and :class:`HostObserver`, which finds the pid namespaces
of local processes by scanning ``/proc`` (any kernel; reading other processes'
``/proc/<pid>/ns/pid`` needs root)."""

from __future__ import annotations

import os
import threading
from typing import Any

from syshub.topology.filter import ContainerFilter, Views
from syshub.topology.model import Container, ContainerEvent, ContainerEventKind, EmitFn, SyncedFn


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.live: dict[str, Container] = {}
        self.listeners: list[EmitFn] = []

    def publish(self, ev: ContainerEvent) -> None:
        with self.lock:
            if ev.kind is ContainerEventKind.START:
                self.live[ev.container.id] = ev.container
            else:
                self.live.pop(ev.container.id, None)
            listeners = list(self.listeners)
        # Listeners run outside the lock: they call back into the hub.
        for fn in listeners:
            fn(ev)


class LocalObserver(Views):
    """Containers announced by hand with :meth:`start_container` /
    :meth:`stop_container`. Copies share the parent's state and see the
    containers that match their namespace and selectors (see
    :class:`~syshub.topology.filter.ContainerFilter`)."""

    def __init__(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> None:
        self._shared = _Shared()
        self.filter = ContainerFilter().narrow(namespace, label_selector, field_selector)
        self._closed = threading.Event()

    def matches(self, c: Container) -> bool:
        return self.filter.matches(c)

    def connect(self) -> None:
        return None

    def containers(self) -> list[Container]:
        with self._shared.lock:
            return self.filter.select(self._shared.live.values())

    def start_container(self, c: Container) -> None:
        self._shared.publish(ContainerEvent(ContainerEventKind.START, c))

    def stop_container(self, c: Container) -> None:
        self._shared.publish(ContainerEvent(ContainerEventKind.STOP, c))

    def _done(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set()

    def run(self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None) -> None:
        def filtered(ev: ContainerEvent) -> None:
            if self.matches(ev.container):
                emit(ev)

        with self._shared.lock:
            # Under the lock: a STOP published meanwhile cannot overtake these STARTs.
            for c in self.filter.select(self._shared.live.values()):
                emit(ContainerEvent(ContainerEventKind.START, c))
            self._shared.listeners.append(filtered)
        if on_synced is not None:
            on_synced()
        try:
            while not self._done(stop):
                stop.wait(0.05)
        finally:
            with self._shared.lock:
                self._shared.listeners.remove(filtered)

    def close(self) -> None:
        self._closed.set()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


class HostObserver(LocalObserver):
    """Local pid namespaces as containers: every pid namespace other than the
    host's, named after the command of its lowest pid. Polls ``/proc``."""

    def __init__(self, alt_root: str = "/", poll_interval: float = 0.5, **kw: Any) -> None:
        super().__init__(**kw)
        self.alt_root = alt_root
        self.poll_interval = poll_interval

    def scan(self) -> dict[int, Container]:
        """Every pid namespace but the host's, by inode (unfiltered)."""
        proc = os.path.join(self.alt_root, "proc")
        host_ns = os.stat(os.path.join(proc, "self", "ns", "pid")).st_ino
        found: dict[int, Container] = {}
        # lowest pid first: a namespace is named after its oldest process (its init)
        for entry in sorted((e for e in os.listdir(proc) if e.isdigit()), key=int):
            try:
                ns = os.stat(os.path.join(proc, entry, "ns", "pid")).st_ino
            except OSError:
                continue
            if ns == host_ns or ns in found:
                continue
            comm = _read(os.path.join(proc, entry, "comm"))
            found[ns] = Container(
                id=f"pidns-{ns}", name=comm or "process", pid=int(entry), pid_ns=ns
            )
        return found

    def _same_namespace(self, old: Container, new: Container) -> bool:
        """Whether ``new`` is still ``old``'s namespace: the kernel reuses a dead
        namespace's inode at once, so the inode alone does not say."""
        if old.pid == new.pid:
            return True
        path = os.path.join(self.alt_root, "proc", str(old.pid), "ns", "pid")
        try:
            return os.stat(path).st_ino == old.pid_ns
        except OSError:
            return False

    def run(self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None) -> None:
        seen: dict[int, Container] = {}
        synced = on_synced
        while not self._done(stop):
            now: dict[int, Container] = {}
            for ns, c in self.scan().items():
                if not self.matches(c):
                    continue
                old = seen.pop(ns, None)
                if old is not None and self._same_namespace(old, c):
                    now[ns] = old  # keep the value announced, so START and STOP are equal
                    continue
                if old is not None:  # a new namespace under a dead one's inode
                    emit(ContainerEvent(ContainerEventKind.STOP, old))
                emit(ContainerEvent(ContainerEventKind.START, c))
                now[ns] = c
            for c in seen.values():
                emit(ContainerEvent(ContainerEventKind.STOP, c))
            seen = now
            if synced is not None:
                synced()
                synced = None
            stop.wait(self.poll_interval)

    def containers(self) -> list[Container]:
        return self.filter.select(self.scan().values())
