"""Subscriber queues: bounded, with an explicit overflow policy, their own
delivered/dropped counters, and three ways to consume (callback worker
thread, blocking iterator with batches, async iterator). The producer (the
hub's reader loop) never blocks and never runs subscriber code.

:class:`BatchSubscription` queues :class:`EventChunk` s instead of event
objects (the batch mode of the CLI and the agent): the events stay in the
poll's batch and are encoded in Rust."""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from syshub.hub.events import TraceEvent
from syshub.hub.stats import SubscriberStats
from syshub.probe import Batch, encode_json, encode_proto, encode_text
from syshub.topology import Container


class Overflow(enum.Enum):
    """What a full queue does with a new event."""

    DROP_NEWEST = "drop_newest"  # keep what is queued, count the new one as dropped
    DROP_OLDEST = "drop_oldest"  # evict the oldest queued event (counted), keep the new one


class Subscription:
    """A bounded queue of events for one subscriber.

    Iterate it (``for ev in sub``) or take batches (``sub.get_batch(n)``) or
    ``async for ev in sub``; or pass ``callback`` to the hub, which then runs
    a worker thread calling it. ``close()`` (or leaving the ``with`` block)
    unsubscribes; it works from inside the callback.
    """

    def __init__(
        self,
        name: str,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        if maxsize <= 0:
            raise ValueError(f"maxsize must be > 0, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self.overflow = Overflow(overflow)
        self._q: collections.deque[Any] = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._on_close = on_close
        self.delivered = 0
        """Events handed to the consumer."""
        self.dropped = 0
        """Events lost to this subscriber: its queue was full, or closed."""
        self.enqueued = 0

    # producer side -------------------------------------------------------
    def put(self, item: Any) -> bool:
        """Enqueue without blocking; returns False if an event was dropped."""
        with self._cv:
            if self._closed:
                self.dropped += 1  # routed while the queue was closing: counted
                return False
            ok = True
            if len(self._q) >= self.maxsize:
                self.dropped += 1
                ok = False
                if self.overflow is Overflow.DROP_NEWEST:
                    return False
                self._q.popleft()
            self._q.append(item)
            self.enqueued += 1
            self._cv.notify()
            return ok

    def put_many(self, items: list[Any]) -> int:
        """Enqueue a run of events under one lock and one wake-up (the hub's
        path per poll batch); returns how many were dropped."""
        with self._cv:
            if self._closed:
                # Routed while the queue was closing (the trace ended before
                # the ring was read): lost to this subscriber, and counted.
                self.dropped += len(items)
                return len(items)
            room = self.maxsize - len(self._q)
            dropped = 0
            if self.overflow is Overflow.DROP_NEWEST:
                if len(items) > room:
                    dropped = len(items) - max(room, 0)
                    items = items[: max(room, 0)]
                self._q.extend(items)
            else:
                self._q.extend(items)
                excess = len(self._q) - self.maxsize
                if excess > 0:
                    dropped = excess
                    for _ in range(excess):
                        self._q.popleft()
            self.dropped += dropped
            self.enqueued += len(items)
            self._cv.notify_all()
            return dropped

    # consumer side -------------------------------------------------------
    def get(self, timeout: float | None = None) -> Any | None:
        """Next event, or None on timeout / when closed and empty."""
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait_for(lambda: bool(self._q) or self._closed, timeout)
            if self._q:
                self.delivered += 1
                return self._q.popleft()
            return None

    def get_batch(self, max_items: int = 4096, timeout: float | None = None) -> list[Any]:
        """Up to ``max_items`` queued events (waits for the first one)."""
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait_for(lambda: bool(self._q) or self._closed, timeout)
            n = min(max_items, len(self._q))
            out = [self._q.popleft() for _ in range(n)]
            self.delivered += n
            return out

    def qsize(self) -> int:
        with self._cv:
            return len(self._q)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unsubscribe (idempotent). Queued events stay readable."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        if self._on_close is not None:
            self._on_close(self)

    def stats(self) -> SubscriberStats:
        with self._cv:
            return SubscriberStats(self.name, self.delivered, self.dropped, len(self._q))

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._agen()

    async def _agen(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        while True:
            item = self.get(timeout=0)
            if item is None:
                if self._closed:
                    return
                # Wait without taking: if this await is cancelled, the worker
                # thread must not pop (and so lose) an event nobody receives.
                await loop.run_in_executor(None, self._wait, 0.1)
                continue
            yield item

    def _wait(self, timeout: float) -> None:
        """Block until an event is queued or the subscription is closed."""
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait_for(lambda: bool(self._q) or self._closed, timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CallbackWorker:
    """Runs a callback for each event of a subscription, on its own thread,
    never under a hub lock. The callback may close the subscription."""

    def __init__(self, sub: Subscription, callback: Callable[..., None], with_key: bool) -> None:
        self.sub = sub
        self.callback = callback
        self.with_key = with_key
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"syshub-cb-{sub.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self.sub.get_batch(1024, timeout=0.1)
            if not batch:
                if self.sub.closed:
                    return
                continue
            for item in batch:
                try:
                    if self.with_key:
                        self.callback(self.sub.name, item)
                    else:
                        self.callback(item)
                except Exception:
                    self.errors += 1
                if self.sub.closed:
                    return

    def join(self, timeout: float | None = None) -> None:
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


Ranges = tuple[tuple[int, int], ...]


class EventChunk:
    """Events of one poll batch for one subscriber, without an object per
    event: the batch, the selected index ranges and the container of each
    pid namespace they hold. Encode it whole in Rust (:meth:`to_json`,
    :meth:`to_text`, :meth:`to_proto`) or iterate :meth:`events`.

    ``batch`` is a :class:`syshub.probe.Batch`; for routed sequences of
    event objects (tests, :meth:`Hub.write_event`) it is that sequence, and
    the encoders fall back to the events' own ``to_dict()``/``to_text()``."""

    __slots__ = ("batch", "containers", "ranges", "size")

    def __init__(
        self, batch: Any, ranges: Ranges, containers: Mapping[int, Container | None]
    ) -> None:
        self.batch = batch
        self.ranges = ranges
        self.containers = containers
        self.size = sum(e - s for s, e in ranges)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<EventChunk {self.size} events in {len(self.ranges)} ranges>"

    def indexes(self) -> Iterator[int]:
        for s, e in self.ranges:
            yield from range(s, e)

    def events(self) -> Iterator[TraceEvent]:
        """The events as :class:`TraceEvent` objects (one object each)."""
        batch, containers = self.batch, self.containers
        for i in self.indexes():
            ev = batch[i]
            yield TraceEvent(ev, containers.get(ev.pid_ns))

    def head(self, n: int) -> EventChunk:
        """The first ``n`` events."""
        return EventChunk(self.batch, _cut(self.ranges, 0, n), self.containers)

    def tail(self, n: int) -> EventChunk:
        """All but the first ``n`` events."""
        return EventChunk(self.batch, _cut(self.ranges, n, self.size), self.containers)

    def _docs(self) -> dict[int, dict[str, object] | None]:
        return {ns: c.to_dict() if c is not None else None for ns, c in self.containers.items()}

    def _native(self) -> bool:
        return isinstance(self.batch, Batch)

    def to_json(self, node: str | None = None) -> bytes:
        """JSON lines: each exactly ``json.dumps(ev.to_dict(), separators=(",",
        ":"))`` (``"node"`` added last when given), encoded in Rust."""
        if self._native():
            return encode_json(self.batch, self.ranges, self._docs(), node=node)
        lines = []
        for ev in self.events():
            d = ev.to_dict()
            if node is not None:
                d["node"] = node
            lines.append(_dumps(d) + "\n")
        return "".join(lines).encode()

    def to_text(self) -> bytes:
        """strace-style lines (``to_text()``), encoded in Rust."""
        if self._native():
            return encode_text(self.batch, self.ranges)
        return "".join(ev.to_text() + "\n" for ev in self.events()).encode()

    def to_proto(self, node: str = "") -> bytes:
        """A serialized ``syshub.v1.EventBatch`` (native batches only)."""
        if not self._native():
            raise TypeError("only chunks of a probe Batch encode to protobuf")
        return encode_proto(self.batch, self.ranges, self._docs(), node=node)


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _cut(ranges: Ranges, lo: int, hi: int) -> Ranges:
    """Events ``lo..hi`` (counted across the ranges) as ranges."""
    out: list[tuple[int, int]] = []
    pos = 0
    for s, e in ranges:
        n = e - s
        a, b = max(lo - pos, 0), min(hi - pos, n)
        if a < b:
            out.append((s + a, s + b))
        pos += n
        if pos >= hi:
            break
    return tuple(out)


class BatchSubscription(Subscription):
    """A subscription that queues :class:`EventChunk` s (the Hub's batch
    mode). The bound, ``maxsize``, counts events, and drops are counted per
    event exactly as for :class:`Subscription` (a chunk that does not fit is
    cut). :meth:`get_chunks` hands out chunks; ``get``/``get_batch``/
    iteration still give :class:`TraceEvent` objects."""

    def __init__(
        self,
        name: str,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        super().__init__(name, maxsize, overflow, on_close)
        self._n = 0
        """Events queued (the chunks in ``_q`` hold this many)."""

    # producer side -------------------------------------------------------
    def put(self, item: Any) -> bool:
        """Enqueue one :class:`TraceEvent` (a path publication) or chunk."""
        if not isinstance(item, EventChunk):
            ev = item.event
            item = EventChunk([ev], ((0, 1),), {ev.pid_ns: item.container})
        return self.put_many([item]) == 0

    def put_many(self, items: list[Any]) -> int:
        """Enqueue chunks under one lock and one wake-up; returns how many
        events were dropped."""
        with self._cv:
            total: int = sum(c.size for c in items)
            if self._closed:
                self.dropped += total
                return total
            dropped = 0
            if self.overflow is Overflow.DROP_NEWEST:
                for c in items:
                    room = self.maxsize - self._n
                    if c.size > room:
                        dropped += c.size - max(room, 0)
                        c = c.head(max(room, 0))
                    if c.size:
                        self._q.append(c)
                        self._n += c.size
                        self.enqueued += c.size
            else:
                for c in items:
                    if not c.size:
                        continue
                    self._q.append(c)
                    self._n += c.size
                    self.enqueued += c.size
                excess = self._n - self.maxsize
                dropped = max(excess, 0)
                while excess > 0:
                    first = self._q[0]
                    if first.size <= excess:
                        self._q.popleft()
                        excess -= first.size
                        self._n -= first.size
                    else:
                        self._q[0] = first.tail(excess)
                        self._n -= excess
                        excess = 0
            self.dropped += dropped
            self._cv.notify_all()
            return dropped

    # consumer side -------------------------------------------------------
    def get_chunks(self, max_events: int = 65536, timeout: float | None = None) -> list[EventChunk]:
        """Queued chunks holding up to ``max_events`` events (waits for the
        first one); [] on timeout, or when closed and empty."""
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait_for(lambda: bool(self._q) or self._closed, timeout)
            out: list[EventChunk] = []
            room = max_events
            while self._q and room > 0:
                c = self._q[0]
                if c.size > room:
                    out.append(c.head(room))
                    self._q[0] = c.tail(room)
                    room = 0
                    break
                self._q.popleft()
                out.append(c)
                room -= c.size
            n = max_events - room
            self._n -= n
            self.delivered += n
            return out

    def get(self, timeout: float | None = None) -> Any | None:
        chunks = self.get_chunks(1, timeout)
        return next(chunks[0].events()) if chunks else None

    def get_batch(self, max_items: int = 4096, timeout: float | None = None) -> list[Any]:
        return [ev for c in self.get_chunks(max_items, timeout) for ev in c.events()]

    def qsize(self) -> int:
        with self._cv:
            return self._n

    def stats(self) -> SubscriberStats:
        with self._cv:
            return SubscriberStats(self.name, self.delivered, self.dropped, self._n)
