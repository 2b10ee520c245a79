"""The hot path: kernel events to job and path subscribers.

The routing tables are immutable snapshots replaced whole under the hub's
lock (copy on write), so :meth:`Router.route` reads them without locking.
A batch is routed per run of events with the same key: the contexts, their
subscriber lists and the path subscribers are resolved once per run; events
are gathered per subscriber and enqueued once per batch (one lock and one
wake-up per subscriber, not per event). Hand-written for speed: this loop is
the measured cost of the Hub (``python -m benches --scenario fanout``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from syshub import syscalls
from syshub.errors import HubError
from syshub.hub.events import TraceEvent
from syshub.hub.jobs import JobContext
from syshub.hub.plan import Key
from syshub.hub.subscriptions import Overflow, Subscription
from syshub.topology import Container

_NO_END = 1 << 64


def _key_columns(events: Any) -> Iterable[tuple[int, int, int, int, Any]] | None:
    """(key_ns, nr, seq, pid_ns, event) read as columns from a native batch."""
    column = getattr(events, "column", None)
    if column is None:
        return None
    return zip(
        memoryview(column("key_ns")).tolist(),
        memoryview(column("nr")).tolist(),
        memoryview(column("seq")).tolist(),
        memoryview(column("pid_ns")).tolist(),
        events,
        strict=True,
    )


def path_key(path: Iterable[str]) -> tuple[str, ...]:
    """A (namespace, pod, container, syscall) prefix; an empty element ends
    it (a wildcard for the rest); the syscall is given its canonical name."""
    parts: list[str] = []
    for p in path:
        if not p:
            break
        parts.append(syscalls.canonical_name(p) if len(parts) == 3 else p)
    if len(parts) > 4:
        raise HubError("a path has at most 4 parts: namespace, pod, container, syscall")
    return tuple(parts)


class Router:
    """Routing tables and counters; :meth:`route` runs on the reader thread."""

    def __init__(self, lookup: Callable[[int], Container | None]) -> None:
        self.lookup = lookup
        self.routes: dict[Key, tuple[JobContext, ...]] = {}
        self.job_subs: dict[str, tuple[Subscription, ...]] = {}
        self.path_subs: dict[tuple[str, ...], tuple[Subscription, ...]] = {}
        self.routed = 0
        self.unrouted = 0
        self._write = threading.Lock()
        """Serialises table replacements (readers never lock)."""

    def subscribe(
        self, table: str, key: Any, name: str, maxsize: int, overflow: Overflow | str
    ) -> Subscription:
        """A new bounded queue in ``job_subs`` (by job id) or ``path_subs``
        (by path prefix); closing it takes it out of the table."""

        def unsubscribe(s: Subscription) -> None:
            self._replace(table, key, lambda subs: tuple(x for x in subs if x is not s))

        sub = Subscription(name, maxsize, overflow, on_close=unsubscribe)
        self._replace(table, key, lambda subs: (*subs, sub))
        return sub

    def _replace(
        self,
        table: str,
        key: Any,
        change: Callable[[tuple[Subscription, ...]], tuple[Subscription, ...]],
    ) -> None:
        with self._write:
            new = dict(getattr(self, table))
            subs = change(new.get(key, ()))
            if subs:
                new[key] = subs
            else:
                new.pop(key, None)
            setattr(self, table, new)

    def subscriptions(self) -> list[Subscription]:
        return [s for g in (*self.job_subs.values(), *self.path_subs.values()) for s in g]

    def route(self, events: Iterable[Any]) -> None:
        routes = self.routes
        job_subs = self.job_subs
        path_subs = self.path_subs
        lookup = self.lookup
        out: dict[int, tuple[Subscription, list[TraceEvent]]] = {}

        def target(sub: Subscription) -> list[TraceEvent]:
            slot = out.get(id(sub))
            if slot is None:
                slot = out[id(sub)] = (sub, [])
            return slot[1]

        rows = _key_columns(events)
        if rows is None:
            rows = (
                (getattr(ev, "key_ns", ev.pid_ns), ev.nr, ev.seq, ev.pid_ns, ev) for ev in events
            )
        new_event = tuple.__new__
        unrouted = routed = 0
        counted: list[list[Any]] = []
        last_key: tuple[int, int] = (-1, -1)
        last_ns = -1
        # plan: per context [ctx, base_seq, rate, [target lists], delivered, end_seq]
        plan: list[list[Any]] = []
        paths: list[list[TraceEvent]] = []
        cont: Container | None = None
        for key_ns, nr, seq, pid_ns, ev in rows:
            if key_ns != last_key[0] or nr != last_key[1]:
                last_key = (key_ns, nr)
                last_ns = -1
                plan = [
                    [
                        c,
                        c.base_seq,
                        c.rate,
                        [target(s) for s in job_subs.get(c.job_id, ())],
                        0,
                        _NO_END if c.end_seq is None else c.end_seq,
                    ]
                    for c in routes.get(last_key, ())
                ]
                counted.extend(plan)
            if not plan:
                unrouted += 1
                continue
            if pid_ns != last_ns:
                # Scope and every-namespace keys span namespaces: label per namespace.
                last_ns = pid_ns
                cont = lookup(pid_ns)
                paths = []
                if path_subs:
                    name = ev.syscall
                    full = (
                        (cont.namespace, cont.pod, cont.name, name) if cont else ("", "", "", name)
                    )
                    paths = [target(s) for d in range(5) for s in path_subs.get(full[:d], ())]
            tev: TraceEvent | None = None
            for entry in plan:
                if seq <= entry[1] or seq % entry[2] or seq > entry[5]:
                    continue
                entry[4] += 1
                if tev is None:
                    tev = new_event(TraceEvent, (ev, cont))
                for lst in entry[3]:
                    lst.append(tev)
            if tev is None:
                continue
            routed += 1
            for lst in paths:
                lst.append(tev)
        for entry in counted:
            entry[0].delivered += entry[4]
        self.unrouted += unrouted
        self.routed += routed
        for sub, items in out.values():
            if items:
                sub.put_many(items)

    def publish_path(self, tev: TraceEvent) -> None:
        """Publish one event on its path streams (swoll's ``WriteEvent``)."""
        path = tev.path
        path_subs = self.path_subs
        for depth in range(5):
            for sub in path_subs.get(path[:depth], ()):
                sub.put(tev)
