"""Observers without a cluster: :class:`LocalObserver`, fed by hand (tests,
``syshub trace``), and :class:`HostObserver`, which finds the pid namespaces
of local processes by scanning ``/proc``."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from syshub.topology.base import Container, ContainerEvent, ContainerEventKind, EmitFn, Observer


def _label_match(selector: object | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    if isinstance(selector, Mapping):
        return all(labels.get(k) == v for k, v in selector.items())
    matches = getattr(selector, "matches", None)
    if matches is None:
        raise TypeError(f"label selector {selector!r} has no matches()")
    return bool(matches(labels))


def _field_match(selector: object | None, c: Container) -> bool:
    if selector is None:
        return True
    fields = {
        "metadata.name": c.pod,
        "metadata.namespace": c.namespace,
        "spec.nodeName": c.node,
        "status.phase": "Running",
    }
    if isinstance(selector, Mapping):
        return all(fields.get(k) == v for k, v in selector.items())
    matches = getattr(selector, "matches", None)
    if matches is None:
        raise TypeError(f"field selector {selector!r} has no matches()")
    return bool(matches(fields))


class LocalObserver:
    """Containers announced by hand with :meth:`start_container` /
    :meth:`stop_container`. Copies share the parent's state and see the
    containers that match their namespace and selectors (labels are the
    container's labels merged over its pod labels)."""

    def __init__(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
        _shared: _Shared | None = None,
    ) -> None:
        self._shared = _shared if _shared is not None else _Shared()
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._closed = threading.Event()

    def matches(self, c: Container) -> bool:
        # Plain local processes have no Kubernetes namespace: a Trace's
        # namespace (always set, "default" at least) does not exclude them.
        if self.namespace and c.namespace and c.namespace != self.namespace:
            return False
        labels = {**c.pod_labels, **c.labels}
        return _label_match(self.label_selector, labels) and _field_match(self.field_selector, c)

    def connect(self) -> None:
        return None

    def containers(self) -> list[Container]:
        with self._shared.lock:
            return [c for c in self._shared.live.values() if self.matches(c)]

    def start_container(self, c: Container) -> None:
        self._shared.publish(ContainerEvent(ContainerEventKind.START, c))

    def stop_container(self, c: Container) -> None:
        self._shared.publish(ContainerEvent(ContainerEventKind.STOP, c))

    def run(self, emit: EmitFn, stop: threading.Event) -> None:
        def filtered(ev: ContainerEvent) -> None:
            if self.matches(ev.container):
                emit(ev)

        with self._shared.lock:
            # Under the lock: a STOP published meanwhile cannot overtake these STARTs.
            for c in [c for c in self._shared.live.values() if self.matches(c)]:
                emit(ContainerEvent(ContainerEventKind.START, c))
            self._shared.listeners.append(filtered)
        try:
            while not stop.is_set() and not self._closed.is_set():
                stop.wait(0.05)
        finally:
            with self._shared.lock:
                self._shared.listeners.remove(filtered)

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> LocalObserver:
        return LocalObserver(namespace, label_selector, field_selector, _shared=self._shared)

    def close(self) -> None:
        self._closed.set()


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


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


class HostObserver(LocalObserver):
    """Local pid namespaces as containers: every pid namespace other than the
    host's, named after the command of its first process. Polls ``/proc``."""

    def __init__(self, alt_root: str = "/", poll_interval: float = 0.5, **kw: Any) -> None:
        super().__init__(**kw)
        self.alt_root = alt_root
        self.poll_interval = poll_interval

    def scan(self) -> dict[int, Container]:
        proc = os.path.join(self.alt_root, "proc")
        host_ns = os.stat(os.path.join(proc, "self", "ns", "pid")).st_ino
        found: dict[int, Container] = {}
        for entry in os.listdir(proc):
            if not entry.isdigit():
                continue
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

    def run(self, emit: EmitFn, stop: threading.Event) -> None:
        seen: dict[int, Container] = {}
        while not stop.is_set() and not self._closed.is_set():
            now = {ns: c for ns, c in self.scan().items() if self.matches(c)}
            for ns, c in now.items():
                if ns not in seen:
                    emit(ContainerEvent(ContainerEventKind.START, c))
            for ns, c in seen.items():
                if ns not in now:
                    emit(ContainerEvent(ContainerEventKind.STOP, c))
            seen = now
            stop.wait(self.poll_interval)

    def containers(self) -> list[Container]:
        return [c for c in self.scan().values() if self.matches(c)]

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> HostObserver:
        return HostObserver(
            self.alt_root,
            self.poll_interval,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        )


_: type[Observer] = LocalObserver  # LocalObserver satisfies the Observer protocol
