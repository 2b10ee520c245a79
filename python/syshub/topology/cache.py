"""The topology cache: which containers (and pods) own which kernel pid namespaces.

Containers that share a namespace (shareProcessNamespace) are all kept; the stop
of one does not drop the others. Pure Python; no privileges needed."""

from __future__ import annotations

import threading

from syshub.topology.model import Container, ContainerEvent, ContainerEventKind


class Topology:
    """Thread-safe cache: pid namespace inode -> containers in it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ns: dict[int, dict[str, Container]] = {}

    def apply(self, ev: ContainerEvent) -> None:
        c = ev.container
        with self._lock:
            if ev.kind is ContainerEventKind.START:
                self._by_ns.setdefault(c.pid_ns, {})[c.id] = c
            else:
                group = self._by_ns.get(c.pid_ns)
                if group is not None:
                    group.pop(c.id, None)
                    if not group:
                        del self._by_ns[c.pid_ns]

    def lookup_container(self, pid_ns: int) -> Container | None:
        """The container owning ``pid_ns`` (the first started, when several share it)."""
        with self._lock:
            group = self._by_ns.get(pid_ns)
            if not group:
                return None
            return next(iter(group.values()))

    def containers_in(self, pid_ns: int) -> list[Container]:
        with self._lock:
            return list(self._by_ns.get(pid_ns, {}).values())

    def all(self) -> list[Container]:
        with self._lock:
            return [c for g in self._by_ns.values() for c in g.values()]
