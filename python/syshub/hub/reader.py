"""The Hub's reader: polls the probe, routes every batch, counts what it could not route,
and answers "has everything the kernel emitted been routed?" (:meth:`ReaderLoop.flush`).

One :class:`ReaderLoop` per Hub; :meth:`ReaderLoop.run` is the body of the hub's reader
thread. A failing poll or route never ends the loop: it is counted (``errors``, with the
last message in ``last_error``) and the events of a batch that could not be routed are
counted as ``lost``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from syshub.hub.plan import Key
from syshub.hub.router import Router
from syshub.probe import Probe

POLL_EVENTS = 16384
"""Events per poll: the reader thread's batches, whole. It hands a batch over
once it holds 8,192 records, after the ring record that crossed that count
(a CPU's staged buffer), so a batch may hold a few more; a poll of exactly
8,192 would split such a batch in two."""


class ReaderLoop:
    """Routes the probe's batches through ``router`` until ``stop`` is set."""

    def __init__(self, router: Router, stop: threading.Event) -> None:
        self.router = router
        self.stop = stop
        self.seen = 0
        """Events handed to the router (routed or not)."""
        self.lost = 0
        """Events of batches whose routing failed."""
        self.errors = 0
        """Failed polls and routes."""
        self.last_error: str | None = None

    def run(self, probe: Probe) -> None:
        """Poll and route until ``stop`` is set or the probe is closed (reader thread)."""
        while not self.stop.is_set():
            try:
                batch = probe.poll(POLL_EVENTS, timeout_ms=100)
            except Exception as e:
                if self.stop.is_set() or probe.closed:
                    return
                self.failed(e)
                self.stop.wait(0.1)
                continue
            if not batch:
                continue
            try:
                self.router.route(batch)
            except Exception as e:
                self.failed(e)
                self.lost += len(batch)
            self.seen += len(batch)

    def failed(self, e: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(e).__name__}: {e}"

    def route(self, events: Any) -> None:
        """Route one batch now (on the caller's thread)."""
        self.router.route(events)
        self.seen += len(events)

    def flush(self, probe: Probe | None, keys: Iterable[Key] | None, timeout: float) -> bool:
        """Wait until what the kernel emitted on ``keys`` (None: all) has been routed: every
        record read out of the ring (``Probe.stats`` has the reader empty it first)
        delivered by poll and routed. True if so within ``timeout``."""
        if probe is None or probe.closed:
            return True
        wanted = None if keys is None else set(keys)
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            st = probe.stats()
            ks = [k for k in st.keys if wanted is None or (k.pid_ns, k.nr) in wanted]
            routed = self.seen >= sum(k.delivered for k in st.keys)
            if routed and all(k.delivered >= k.emitted for k in ks):
                return True
            if now >= end:
                return False
            time.sleep(0.002)
