"""The watch protocol of the shared pod watch: LIST, WATCH with bookmarks, relist on 410.

LIST (remember ``resourceVersion``), WATCH from it with bookmarks (a BOOKMARK only
advances the version), RELIST on ``410 Gone`` and diff against the cache, reconnect
from the last version with capped, jittered exponential backoff on connection errors.
Nothing here raises out of :func:`watch_loop`; what the events mean is the
:class:`Sink`'s business.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from syshub.topology.kubernetes.api import (
    Gone,
    PodApi,
    close_response,
    log,
    one_line,
    shutdown_response,
)


class Generation:
    """One lifetime of the shared watch (from the first subscriber to the last)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.response: Any = None
        self.events = 0  # watch events received (only the watch thread writes it)
        self.threads: list[threading.Thread] = []

    def set_response(self, resp: Any) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            self.response = resp
            return True

    def abort(self) -> None:
        """Stop, and unblock a watch read in progress by shutting its socket down."""
        self.stop.set()
        with self.lock:
            resp = self.response
        if resp is not None:
            shutdown_response(resp)


class Sink(Protocol):
    """Where the watch delivers what it learns (the pod state)."""

    @property
    def resource_version(self) -> str | None: ...

    def relist(self, gen: Generation, items: list[dict[str, Any]], rv: str) -> None: ...

    def apply_event(
        self, gen: Generation, kind: str, raw: dict[str, Any], rv: str | None
    ) -> None: ...

    def count(self, what: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, failures: int) -> float:
        delay = min(self.maximum, self.initial * (2.0 ** min(failures, 30)))
        return delay * random.uniform(0.5, 1.0)


def watch_once(api: PodApi, gen: Generation, sink: Sink) -> None:
    """One WATCH request from the sink's resourceVersion (``gen.events`` counts events).

    Raises :class:`Gone` on 410 and anything else on connection or stream errors.
    """
    resp = api.watch(sink.resource_version)
    sink.count("watches")
    if not gen.set_response(resp):
        shutdown_response(resp)
        return
    try:
        for kind, obj in api.events(resp):
            if gen.stop.is_set():
                break
            gen.events += 1
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if kind == "BOOKMARK":
                sink.count("bookmarks")
            sink.apply_event(gen, kind, obj, str(rv) if rv else None)
    finally:
        with gen.lock:
            gen.response = None
        close_response(resp)


def watch_loop(api: PodApi, gen: Generation, sink: Sink, backoff: Backoff) -> None:
    """LIST, then WATCH from the listed version; relist on 410; back off on errors."""
    failures = 0  # consecutive failed or fruitless attempts: drives the backoff
    need_list = True
    while not gen.stop.is_set():
        started = time.monotonic()
        events_before = gen.events
        try:
            if need_list:
                sink.relist(gen, *api.list())
                need_list = False
                continue
            watch_once(api, gen, sink)
            if gen.stop.is_set():
                break
            # A clean end (the server's timeout): reconnect at once, unless the server
            # keeps closing streams right away without sending anything.
            if gen.events > events_before or time.monotonic() - started >= 1.0:
                failures = 0
                continue
            delay = backoff.delay(failures)
            failures += 1
        except Gone as exc:
            if gen.stop.is_set():
                break
            sink.count("relists_gone")
            need_list = True
            if gen.events > events_before:
                failures = 0
                log.info("kubernetes watch expired (%s); relisting", one_line(exc))
                continue
            # 410 right after a LIST (or again and again): do not spin
            delay = backoff.delay(failures)
            failures += 1
            log.info("kubernetes watch expired (%s); relisting in %.2fs", one_line(exc), delay)
        except Exception as exc:
            if gen.stop.is_set():
                break
            if gen.events > events_before or time.monotonic() - started >= 5.0:
                failures = 0  # it worked for a while: start the backoff afresh
            delay = backoff.delay(failures)
            failures += 1
            sink.count("errors")
            log.warning(
                "kubernetes %s failed (%s); retrying in %.2fs",
                "list" if need_list else "watch",
                one_line(exc),
                delay,
            )
        gen.stop.wait(delay)
