"""A small but faithful Kubernetes API server for tests.

It serves what a list+watch client needs, over plain HTTP on 127.0.0.1, to the
*real* ``kubernetes`` Python client:

* ``GET /version``, ``/api``, ``/api/v1`` (discovery, minimal);
* ``GET /api/v1/pods`` and ``/api/v1/namespaces/{ns}/pods`` (LIST) with
  ``metadata.resourceVersion`` and the ``labelSelector`` / ``fieldSelector``
  query parameters honoured (400 for unsupported field labels, like the real one);
* the same paths with ``?watch=1`` (WATCH): a chunked stream of JSON lines starting
  after ``resourceVersion``; ``resourceVersion`` unset or ``0`` first replays the
  current objects as ADDED; objects that start/stop matching a selector are sent
  as ADDED/DELETED, as the real API server does; ``allowWatchBookmarks=true`` gets
  BOOKMARK events (on demand and, optionally, periodically); ``timeoutSeconds``
  ends the stream cleanly; a ``resourceVersion`` older than the retained history
  gets ``410 Gone`` as an ERROR event in the stream (or, in ``gone_mode="status"``,
  as an HTTP 410 status).

Beyond pods (:mod:`support.k8s_store`, :mod:`support.k8s_routes`): every resource type of
``BUILTIN_TYPES`` and, once a CustomResourceDefinition is created, its custom resources under
their group (discovery at ``/apis``), with GET/LIST/WATCH as above and POST, PUT, PATCH (JSON
merge patch, resourceVersion preconditions -> 409), DELETE; the ``status`` subresource;
core Events; pod logs (``follow=true`` streams what tests append with :meth:`append_log`).

Tests drive it from Python: create/update/delete pods, expire the history, drop
open watch connections mid-stream, send bookmarks, and take the whole server down
and up again on the same port. Every request is recorded for assertions.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from support.k8s_http import RecordedRequest, _HistoryEntry, _Server, _WatchState
from support.k8s_objects import Pod, ResourceType, _merge, make_pod
from support.k8s_store import ApiError, Store

__all__ = ["ApiError", "FakeApiServer", "Pod", "RecordedRequest", "ResourceType", "make_pod"]


class FakeApiServer(Store):
    """The server and its state. Use as a context manager or call :meth:`start`/:meth:`close`."""

    def __init__(
        self,
        port: int = 0,
        *,
        bookmark_interval: float | None = None,
        gone_mode: Literal["event", "status"] = "event",
    ) -> None:
        self.bookmark_interval = bookmark_interval
        self.gone_mode = gone_mode
        self.requests: list[RecordedRequest] = []
        self.bookmarks_sent = 0
        self._port = port
        self._cond = threading.Condition()
        Store.__init__(self)
        self._pods: dict[tuple[str, str], Pod] = self._store["pods"]
        self._history: list[_HistoryEntry] = []
        self._rv = 100  # start away from 0 so "0" keeps its special meaning
        self._floor = self._rv
        self._watches: list[_WatchState] = []
        self._watch_failures: list[int] = []
        self._serving = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeApiServer:
        """(Re)start serving on the same port; state and history are kept."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        with self._cond:
            self._serving = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: refuse new connections and cut every open one (state is kept)."""
        server = self._server
        if server is None:
            return
        with self._cond:
            self._serving = False
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        server.kill_clients()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    close = stop

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ state changes
    def _commit(self, kind: str, obj: Pod, old: Pod | None, resource: str = "pods") -> Pod:
        # caller holds self._cond
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._history.append(_HistoryEntry(self._rv, kind, copy.deepcopy(obj), old, resource))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def create_pod(self, pod: Pod) -> Pod:
        pod = copy.deepcopy(pod)
        meta = pod.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        key = (meta["namespace"], meta["name"])
        with self._cond:
            if key in self._pods:
                raise KeyError(f"pod {key} already exists")
            self._pods[key] = pod
            return self._commit("ADDED", pod, None)

    def update_pod(
        self,
        namespace: str,
        name: str,
        patch: Mapping[str, Any] | None = None,
        *,
        mutate: Callable[[Pod], None] | None = None,
    ) -> Pod:
        with self._cond:
            old = self._pods[(namespace, name)]
            new = copy.deepcopy(old)
            if patch:
                _merge(new, patch)
            if mutate:
                mutate(new)
            self._pods[(namespace, name)] = new
            return self._commit("MODIFIED", new, copy.deepcopy(old))

    def delete_pod(self, namespace: str, name: str) -> Pod:
        with self._cond:
            pod = self._pods.pop((namespace, name))
            return self._commit("DELETED", pod, None)

    def get_pod(self, namespace: str, name: str) -> Pod:
        with self._cond:
            return copy.deepcopy(self._pods[(namespace, name)])

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def expire_history(self) -> None:
        """Compact: a watch from any resourceVersion older than now gets 410 Gone."""
        with self._cond:
            self._floor = self._rv

    def send_bookmark(self) -> None:
        """Ask every open watch that allows bookmarks to send one now."""
        with self._cond:
            for w in self._watches:
                if w.bookmarks:
                    w.pending_bookmarks += 1
            self._cond.notify_all()

    def fail_next_watches(self, count: int = 1, code: int = 500) -> None:
        """The next ``count`` watch requests get an ERROR event with ``code``, then end."""
        with self._cond:
            self._watch_failures.extend([code] * count)

    def drop_watches(self) -> int:
        """Cut every open watch connection abruptly (no terminating chunk). Returns how many."""
        with self._cond:
            watches = list(self._watches)
            for w in watches:
                w.dropped = True
            self._cond.notify_all()
        for w in watches:
            with contextlib.suppress(OSError):
                w.sock.shutdown(socket.SHUT_RDWR)
        return len(watches)

    # ------------------------------------------------------------------ introspection
    @property
    def watch_requests(self) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self.requests if r.is_watch]

    @property
    def list_requests(self) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self.requests if r.path.endswith("/pods") and not r.is_watch]

    @property
    def open_watches(self) -> int:
        with self._cond:
            return len(self._watches)

    def wait_for_watches(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until exactly ``count`` watch connections are open."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._watches) != count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    # ------------------------------------------------------------------ internals
    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(req)

    def _list(
        self, matches: Callable[[Pod | None], bool], resource: str = "pods"
    ) -> tuple[list[Pod], int]:
        with self._cond:
            objs = self._store[resource].values()
            return [copy.deepcopy(p) for p in objs if matches(p)], self._rv

    def _history_after(self, rv: int) -> Iterator[_HistoryEntry]:
        # caller holds self._cond; history is append-only and sorted by rv
        lo, hi = 0, len(self._history)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._history[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        yield from self._history[lo:]

    def _add_watch(self, state: _WatchState) -> None:
        with self._cond:
            self._watches.append(state)
            self._cond.notify_all()

    def _remove_watch(self, state: _WatchState) -> None:
        with self._cond:
            if state in self._watches:
                self._watches.remove(state)
            self._cond.notify_all()
