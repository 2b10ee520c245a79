"""One shared watch of one API group's Traces (cluster-wide or one namespace).

The watch protocol is the pod watch's (:func:`~syshub.topology.kubernetes.watch.watch_loop`:
LIST, WATCH from the listed resourceVersion with bookmarks, relist on 410 Gone, capped
backoff); :class:`TraceSink` turns what it learns into work items for the controller's one
worker thread: ``("UPSERT", group, obj)``, ``("DELETED", group, obj)`` and, after each
LIST, ``("SYNCED", group, None)``; a deletion also calls ``on_delete(obj)`` at once, on
the watch thread, so kernel filters go without waiting for the worker. A relist diffs
against what the watch knew, so a Trace deleted while the watch was down is reported as
DELETED.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Any

from syshub.agent.controller.kube import TraceApi
from syshub.topology.kubernetes.watch import Backoff, Generation, watch_loop

Key = tuple[str, str]
Item = tuple[str, str, dict[str, Any] | None]


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class TraceSink:
    """What the watch of one group knows, and the work it hands to the controller."""

    def __init__(
        self,
        group: str,
        work: queue.Queue[Item],
        on_delete: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.group = group
        self.work = work
        self.on_delete = on_delete
        self._rv: str | None = None
        self._known: dict[Key, dict[str, Any]] = {}
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    def resource_version(self) -> str | None:
        return self._rv

    def relist(self, gen: Generation, items: list[dict[str, Any]], rv: str) -> None:
        self.counters["lists"] += 1
        seen = {object_key(o): o for o in items if isinstance(o, dict)}
        for key in set(self._known) - set(seen):
            self._deleted(self._known[key])
        for obj in seen.values():
            self.work.put(("UPSERT", self.group, obj))
        self._known = seen
        self._rv = rv or None
        self.work.put(("SYNCED", self.group, None))

    def apply_event(self, gen: Generation, kind: str, raw: dict[str, Any], rv: str | None) -> None:
        if rv:
            self._rv = rv
        if kind == "BOOKMARK" or not isinstance(raw, dict):
            return
        key = object_key(raw)
        if kind == "DELETED":
            self._known.pop(key, None)
            self._deleted(raw)
        else:
            self._known[key] = raw
            self.work.put(("UPSERT", self.group, raw))

    def _deleted(self, obj: dict[str, Any]) -> None:
        """A deletion stops the job at once, from this thread (the worker may be busy
        writing status); the worker then forgets the trace."""
        if self.on_delete is not None:
            self.on_delete(obj)
        self.work.put(("DELETED", self.group, obj))

    def count(self, what: str) -> None:
        self.counters[what] += 1


class GroupWatch:
    """The watch thread of one group."""

    def __init__(
        self,
        api: TraceApi,
        work: queue.Queue[Item],
        backoff: Backoff,
        on_delete: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api = api
        self.sink = TraceSink(api.group, work, on_delete)
        self.backoff = backoff
        self.gen = Generation()
        self._thread = threading.Thread(
            target=watch_loop,
            args=(api, self.gen, self.sink, backoff),
            name=f"syshub-k8s-traces-{api.group}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.gen.abort()
        if self._thread.is_alive():
            self._thread.join(timeout)
