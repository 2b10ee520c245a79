"""A small but faithful Kubernetes API server for pods, for tests.

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

Tests drive it from Python: create/update/delete pods, expire the history, drop
open watch connections mid-stream, send bookmarks, and take the whole server down
and up again on the same port. Every request is recorded for assertions.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

Pod = dict[str, Any]

_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-syshub-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUPPORTED_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")


# --------------------------------------------------------------------------- selectors
# Deliberately independent of syshub.selectors, so the observer is not tested against
# its own parser.

_SET_TERM = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current = ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    m = _SET_TERM.match(term)
    if m:
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: key not in labels or labels[key] not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (p.strip() for p in term.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: term in labels


def parse_label_selector(selector: str) -> Callable[[Mapping[str, str]], bool]:
    checks = [_label_term(t) for t in _split_terms(selector)]
    return lambda labels: all(check(labels) for check in checks)


def pod_fields(pod: Pod) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName", "") or "",
        "status.phase": (pod.get("status") or {}).get("phase", "") or "",
    }


class BadSelector(ValueError):
    pass


def parse_field_selector(selector: str) -> Callable[[Pod], bool]:
    checks: list[tuple[str, str, bool]] = []
    for term in _split_terms(selector):
        for op in ("!=", "==", "="):
            if op in term:
                key, value = (p.strip() for p in term.split(op, 1))
                break
        else:
            raise BadSelector(f"invalid field selector term {term!r}")
        if key not in _SUPPORTED_FIELDS:
            raise BadSelector(f'field label not supported: "{key}"')
        checks.append((key, value, op == "!="))

    def match(pod: Pod) -> bool:
        fields = pod_fields(pod)
        return all((fields[k] != v) if neg else (fields[k] == v) for k, v, neg in checks)

    return match


# --------------------------------------------------------------------------- helpers


def make_pod(
    name: str,
    namespace: str = "default",
    *,
    uid: str | None = None,
    labels: Mapping[str, str] | None = None,
    node: str = "node-a",
    phase: str = "Running",
    containers: Mapping[str, str] | None = None,
    restart_counts: Mapping[str, int] | None = None,
) -> Pod:
    """A pod manifest shaped like the API server's (``containers``: name -> container id)."""
    containers = dict(containers or {"main": ""})
    restarts = dict(restart_counts or {})
    statuses = [
        {
            "name": cname,
            "containerID": f"containerd://{cid}" if cid else "",
            "restartCount": restarts.get(cname, 0),
            "ready": phase == "Running",
            "image": "busybox:latest",
            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
            if phase == "Running"
            else {"waiting": {"reason": "ContainerCreating"}},
        }
        for cname, cid in containers.items()
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "labels": dict(labels or {}),
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": "busybox:latest"} for c in containers],
        },
        "status": {"phase": phase, "containerStatuses": statuses},
    }


def _merge(dst: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386): dicts merge recursively, ``None`` deletes a key."""
    for key, value in patch.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]

    @property
    def is_watch(self) -> bool:
        return self.params.get("watch", "") in ("1", "true", "True")


@dataclass
class _HistoryEntry:
    rv: int
    type: str
    obj: Pod
    old: Pod | None


@dataclass
class _WatchState:
    sock: socket.socket
    bookmarks: bool
    pending_bookmarks: int = 0
    dropped: bool = False
    params: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], api: FakeApiServer) -> None:
        self.api = api
        self.client_sockets: set[socket.socket] = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sock_lock:
            self.client_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sock_lock:
            self.client_sockets.discard(request)
        super().shutdown_request(request)

    def kill_clients(self) -> None:
        with self.sock_lock:
            socks = list(self.client_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ------------------------------------------------------------------ plumbing
    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send_json(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        )

    def _chunk(self, payload: bytes) -> None:
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    # ------------------------------------------------------------------ routing
    def do_GET(self) -> None:
        api = self.server.api
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = RecordedRequest("GET", parts.path, params)
        api._record(req)
        path = parts.path.rstrip("/")
        if path == "/version":
            self._send_json(200, _VERSION)
            return
        if path == "/api":
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
            return
        if path == "/api/v1":
            self._send_json(
                200,
                {
                    "kind": "APIResourceList",
                    "groupVersion": "v1",
                    "resources": [
                        {
                            "name": "pods",
                            "singularName": "pod",
                            "namespaced": True,
                            "kind": "Pod",
                            "verbs": ["get", "list", "watch"],
                        }
                    ],
                },
            )
            return
        namespace: str | None
        if path == "/api/v1/pods":
            namespace = None
        else:
            m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
            if not m:
                self._status(404, "NotFound", f"the server could not find {parts.path}")
                return
            namespace = m.group(1)
        try:
            labels = parse_label_selector(params.get("labelSelector", ""))
            fields = parse_field_selector(params.get("fieldSelector", ""))
        except BadSelector as exc:
            self._status(400, "BadRequest", str(exc))
            return

        def matches(pod: Pod | None) -> bool:
            if pod is None:
                return False
            meta = pod.get("metadata") or {}
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            return labels(meta.get("labels") or {}) and fields(pod)

        if req.is_watch:
            self._watch(params, matches)
        else:
            items, rv = api._list(matches)
            self._send_json(
                200,
                {
                    "kind": "PodList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )

    # ------------------------------------------------------------------ watch
    def _watch(self, params: dict[str, str], matches: Callable[[Pod | None], bool]) -> None:
        api = self.server.api
        rv_param = params.get("resourceVersion", "")
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        bookmarks = params.get("allowWatchBookmarks", "") in ("1", "true", "True")
        initial: list[dict[str, Any]] = []
        expired = False
        with api._cond:
            if rv_param in ("", "0"):
                cursor = api._rv
                initial = [
                    {"type": "ADDED", "object": copy.deepcopy(p)}
                    for p in api._pods.values()
                    if matches(p)
                ]
            else:
                try:
                    cursor = int(rv_param)
                except ValueError:
                    cursor = -1
                expired = cursor < api._floor
                if expired and api.gone_mode == "status":
                    self._status(410, "Expired", f"too old resource version: {rv_param}")
                    return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        if expired:
            err = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {rv_param} ({api._floor})",
                    "reason": "Expired",
                    "code": 410,
                },
            }
            try:
                self._chunk(json.dumps(err).encode() + b"\n")
                self._chunk(b"")
            except OSError:
                pass
            return
        with api._cond:
            failure = api._watch_failures.pop(0) if api._watch_failures else None
        if failure is not None:
            err = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"injected failure {failure}",
                    "reason": "InternalError",
                    "code": failure,
                },
            }
            with contextlib.suppress(OSError):
                self._chunk(json.dumps(err).encode() + b"\n")
                self._chunk(b"")
            return
        state = _WatchState(self.connection, bookmarks, params=params)
        api._add_watch(state)
        deadline = time.monotonic() + timeout if timeout else None
        next_periodic = (
            time.monotonic() + api.bookmark_interval
            if (bookmarks and api.bookmark_interval)
            else None
        )
        try:
            for ev in initial:
                self._chunk(json.dumps(ev).encode() + b"\n")
            while True:
                out: list[dict[str, Any]] = []
                with api._cond:
                    while True:
                        if state.dropped or not api._serving or _peer_closed(self.connection):
                            return
                        now = time.monotonic()
                        if deadline is not None and now >= deadline:
                            break
                        if api._rv > cursor or state.pending_bookmarks:
                            break
                        if next_periodic is not None and now >= next_periodic:
                            state.pending_bookmarks += 1
                            break
                        waits = [0.05]
                        if deadline is not None:
                            waits.append(deadline - now)
                        if next_periodic is not None:
                            waits.append(next_periodic - now)
                        api._cond.wait(max(0.0, min(waits)))
                    for entry in api._history_after(cursor):
                        translated = _translate(entry, matches)
                        if translated is not None:
                            out.append(translated)
                    cursor = api._rv
                    if state.pending_bookmarks and state.bookmarks:
                        out.append(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": "Pod",
                                    "apiVersion": "v1",
                                    "metadata": {
                                        "resourceVersion": str(cursor),
                                        "creationTimestamp": None,
                                    },
                                    "spec": {"containers": None},
                                    "status": {},
                                },
                            }
                        )
                        api.bookmarks_sent += 1
                    state.pending_bookmarks = 0
                    if next_periodic is not None and time.monotonic() >= next_periodic:
                        next_periodic = time.monotonic() + (api.bookmark_interval or 0.0)
                for ev in out:
                    self._chunk(json.dumps(ev).encode() + b"\n")
                if deadline is not None and time.monotonic() >= deadline:
                    self._chunk(b"")  # clean end of the stream (server-side timeout)
                    return
        except OSError:
            return
        finally:
            api._remove_watch(state)


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its end (the way Go's server notices it)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _translate(
    entry: _HistoryEntry, matches: Callable[[Pod | None], bool]
) -> dict[str, Any] | None:
    new_ok = matches(entry.obj)
    if entry.type == "ADDED":
        kind = "ADDED" if new_ok else None
    elif entry.type == "DELETED":
        kind = "DELETED" if new_ok else None
    else:
        old_ok = matches(entry.old)
        if old_ok and new_ok:
            kind = "MODIFIED"
        elif new_ok:
            kind = "ADDED"
        elif old_ok:
            kind = "DELETED"
        else:
            kind = None
    if kind is None:
        return None
    return {"type": kind, "object": copy.deepcopy(entry.obj)}


class FakeApiServer:
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
        self._pods: dict[tuple[str, str], Pod] = {}
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
    def _commit(self, kind: str, obj: Pod, old: Pod | None) -> Pod:
        # caller holds self._cond
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._history.append(_HistoryEntry(self._rv, kind, copy.deepcopy(obj), old))
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

    def _list(self, matches: Callable[[Pod | None], bool]) -> tuple[list[Pod], int]:
        with self._cond:
            return [copy.deepcopy(p) for p in self._pods.values() if matches(p)], self._rv

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
