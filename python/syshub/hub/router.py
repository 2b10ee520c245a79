"""The hot path: kernel events to job and path subscribers.

The routing tables are immutable snapshots replaced whole under the hub's
lock (copy on write), so :meth:`Router.route` reads them without locking.
A batch is routed per run of events with the same key and pid namespace
(``Batch.runs()``, read in Rust): the contexts, their subscriber lists and
the path subscribers are resolved once per run, and a context's share of a
run is an index range (or ranges selected in Rust when it samples or
starts/ends inside the run), not a test per event. Event subscribers get
TraceEvent objects, batch subscribers one EventChunk per batch (the batch,
its ranges, the containers: no object per event). Everything is enqueued
once per subscriber per batch (one lock and one wake-up). Hand-written for speed: this loop is
the measured cost of the Hub (``python -m benches --scenario fanout``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from syshub import syscalls
from syshub.errors import HubError
from syshub.hub.events import TraceEvent
from syshub.hub.jobs import JobContext
from syshub.hub.plan import Key
from syshub.hub.subscriptions import BatchSubscription, EventChunk, Overflow, Subscription
from syshub.topology import Container

_SEQ_MAX = (1 << 64) - 1
COMPACT_BELOW = 4
"""A chunk holding less than 1/COMPACT_BELOW of its batch is copied out."""
Run = tuple[int, int, int, int, int, int, int]
"""(key_ns, nr, pid_ns, start, end, min_seq, max_seq): events ``start..end``
of a batch, consecutive, of one filter key and pid namespace."""
Span = tuple[int, int]
Select = Callable[[int, int, int, int, int], list[Span]]


def _py_runs(events: Sequence[Any]) -> list[Run]:
    """:meth:`Batch.runs` for a sequence of event objects."""
    out: list[Run] = []
    for i, ev in enumerate(events):
        key_ns, nr, pid_ns, seq = getattr(ev, "key_ns", ev.pid_ns), ev.nr, ev.pid_ns, ev.seq
        if out and out[-1][:3] == (key_ns, nr, pid_ns):
            r = out[-1]
            out[-1] = (key_ns, nr, pid_ns, r[3], i + 1, min(r[5], seq), max(r[6], seq))
        else:
            out.append((key_ns, nr, pid_ns, i, i + 1, seq, seq))
    return out


def _py_select(events: Sequence[Any]) -> Select:
    """:meth:`Batch.select` for a sequence of event objects."""

    def select(start: int, end: int, base: int, rate: int, last: int) -> list[Span]:
        out: list[Span] = []
        for i in range(start, end):
            seq = events[i].seq
            if seq <= base or seq % rate or seq > last:
                continue
            if out and out[-1][1] == i:
                out[-1] = (out[-1][0], i + 1)
            else:
                out.append((i, i + 1))
        return out

    return select


def _merge(spans: list[Span]) -> list[Span]:
    """Sorted, with overlapping and touching spans joined."""
    if len(spans) < 2:
        return spans
    spans = sorted(spans)
    out = [spans[0]]
    for s, e in spans[1:]:
        ls, le = out[-1]
        if s <= le:
            out[-1] = (ls, max(le, e))
        else:
            out.append((s, e))
    return out


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


def _chunk(seq: Sequence[Any], spans: list[Span], cmap: dict[int, Container | None]) -> EventChunk:
    """A subscriber's chunk of a batch. A queued chunk keeps its batch alive:
    one that selects little of a probe batch (sampling, a narrow path) gets
    a compact copy of its events, so the memory a queue holds follows its
    bound in events."""
    n = sum(e - s for s, e in spans)
    take = getattr(seq, "take", None)
    if take is not None and n * COMPACT_BELOW < len(seq):
        return EventChunk(take(spans), ((0, n),), cmap)
    return EventChunk(seq, tuple(spans), cmap)


class _Delivery:
    """What one batch gives each subscriber, gathered run by run, enqueued at
    the end: event subscribers a list of TraceEvents (one object per event,
    shared by every subscriber that gets it), batch subscribers ranges and
    containers (one EventChunk)."""

    def __init__(self, seq: Sequence[Any]) -> None:
        self.seq = seq
        self.events: dict[int, tuple[Subscription, list[TraceEvent]]] = {}
        self.chunks: dict[int, tuple[Subscription, list[Span], dict[int, Container | None]]] = {}
        self.pid_ns = 0
        self.cont: Container | None = None
        self.tevs: dict[int, TraceEvent] | None = None

    def run(self, pid_ns: int, cont: Container | None, shared: bool) -> None:
        """The next run's pid namespace and container; ``shared``: several
        contexts or paths may give one event (then one object for all)."""
        self.pid_ns, self.cont, self.tevs = pid_ns, cont, {} if shared else None

    def objects(self, sel: list[Span]) -> list[TraceEvent]:
        tevs, seq, cont, new_event = self.tevs, self.seq, self.cont, tuple.__new__
        if tevs is None:
            return [new_event(TraceEvent, (seq[i], cont)) for s, e in sel for i in range(s, e)]
        out = []
        for s, e in sel:
            for i in range(s, e):
                tev = tevs.get(i)
                if tev is None:
                    tev = tevs[i] = new_event(TraceEvent, (seq[i], cont))
                out.append(tev)
        return out

    def give(self, subs: Iterable[Subscription], sel: list[Span]) -> None:
        evs: list[TraceEvent] | None = None
        for sub in subs:
            if isinstance(sub, BatchSubscription):
                slot = self.chunks.get(id(sub))
                if slot is None:
                    slot = self.chunks[id(sub)] = (sub, [], {})
                slot[1].extend(sel)
                slot[2][self.pid_ns] = self.cont
                continue
            if evs is None:
                evs = self.objects(sel)
            got = self.events.get(id(sub))
            if got is None:
                self.events[id(sub)] = (sub, list(evs))
            else:
                got[1].extend(evs)

    def enqueue(self) -> None:
        for sub, items in self.events.values():
            sub.put_many(items)
        for sub, spans, cmap in self.chunks.values():
            sub.put_many([_chunk(self.seq, _merge(spans), cmap)])


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
        self,
        table: str,
        key: Any,
        name: str,
        maxsize: int,
        overflow: Overflow | str,
        *,
        batch: bool = False,
    ) -> Subscription:
        """A new bounded queue in ``job_subs`` (by job id) or ``path_subs``
        (by path prefix); closing it takes it out of the table. ``batch``: a
        :class:`BatchSubscription` (chunks, no object per event)."""

        def unsubscribe(s: Subscription) -> None:
            self._replace(table, key, lambda subs: tuple(x for x in subs if x is not s))

        kind = BatchSubscription if batch else Subscription
        sub = kind(name, maxsize, overflow, on_close=unsubscribe)
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
        """Route a batch: per run of one key and namespace, each context's
        share (a whole run without a look at each event when it can; else
        ranges selected in Rust); event subscribers get one TraceEvent per
        event (shared between them), batch subscribers one EventChunk per
        batch. Counted: each context's delivered, routed, unrouted."""
        runs_of = getattr(events, "runs", None)
        seq: Sequence[Any]
        if runs_of is not None:
            seq = events  # type: ignore[assignment]
            runs: list[Run] = runs_of()
            select: Select = seq.select  # type: ignore[attr-defined]
        else:
            seq = events if isinstance(events, Sequence) else list(events)
            runs, select = _py_runs(seq), _py_select(seq)
        routes = self.routes
        job_subs = self.job_subs
        path_subs = self.path_subs
        out = _Delivery(seq)
        conts: dict[int, Container | None] = {}
        names: dict[int, str] = {}
        unrouted = routed = 0
        for key_ns, nr, pid_ns, start, end, lo, hi in runs:
            ctxs = routes.get((key_ns, nr))
            if not ctxs:
                unrouted += end - start
                continue
            if pid_ns in conts:
                cont = conts[pid_ns]
            else:
                cont = conts[pid_ns] = self.lookup(pid_ns)
            out.run(pid_ns, cont, len(ctxs) > 1 or bool(path_subs))
            union: list[Span] = []
            for c in ctxs:
                base, rate = c.base_seq, c.rate
                last = _SEQ_MAX if c.end_seq is None else c.end_seq
                if hi <= base or lo > last:
                    continue
                if rate == 1 and lo > base and hi <= last:
                    sel = [(start, end)]
                else:
                    sel = select(start, end, base, rate, last)
                    if not sel:
                        continue
                c.delivered += sum(e - s for s, e in sel)
                union = _merge(union + sel) if union else sel
                subs = job_subs.get(c.job_id)
                if subs:
                    out.give(subs, sel)
            if not union:
                continue
            routed += sum(e - s for s, e in union)
            if path_subs:
                name = names.get(nr)
                if name is None:
                    name = names[nr] = seq[union[0][0]].syscall
                full = (cont.namespace, cont.pod, cont.name, name) if cont else ("", "", "", name)
                out.give([s for d in range(5) for s in path_subs.get(full[:d], ())], union)
        self.unrouted += unrouted
        self.routed += routed
        out.enqueue()

    def publish_path(self, tev: TraceEvent) -> None:
        """Publish one event on its path streams (swoll's ``WriteEvent``)."""
        path = tev.path
        path_subs = self.path_subs
        for depth in range(5):
            for sub in path_subs.get(path[:depth], ()):
                sub.put(tev)
