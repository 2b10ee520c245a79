"""Subscriber queues: bounded, with an explicit overflow policy, their own
delivered/dropped counters, and three ways to consume (callback worker
thread, blocking iterator with batches, async iterator). The producer (the
hub's reader loop) never blocks and never runs subscriber code."""

from __future__ import annotations

import asyncio
import collections
import enum
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from syshub.hub.stats import SubscriberStats


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
