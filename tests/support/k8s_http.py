"""HTTP side of the local API server: the request handler (GET, LIST, WATCH streams, pod
logs; the write verbs go to :mod:`support.k8s_routes`)."""

from __future__ import annotations

import contextlib
import copy
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from support.k8s_objects import (
    BadSelector,
    Pod,
    ResourceType,
    parse_field_selector,
    parse_label_selector,
)
from support.k8s_routes import decode_body, discovery, parse_path, write
from support.k8s_store import ApiError

if TYPE_CHECKING:
    from support.k8s_apiserver import FakeApiServer

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
    resource: str = "pods"


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
    def _request(self, method: str) -> tuple[RecordedRequest, str, dict[str, str]]:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = RecordedRequest(method, parts.path, params)
        self.server.api._record(req)
        return req, parts.path.rstrip("/"), params

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        api = self.server.api
        req, path, params = self._request("GET")
        if path == "/version":
            self._send_json(200, _VERSION)
            return
        doc = discovery(api, path)
        if doc is not None:
            self._send_json(200, doc)
            return
        route = parse_path(api, path)
        if route is None:
            self._status(404, "NotFound", f"the server could not find {req.path}")
            return
        if route.name:
            if route.sub == "log" and route.rt.key == "pods":
                self._pod_log(route.namespace or "default", route.name, params)
                return
            try:
                obj = api.get(route.rt, route.namespace, route.name)
            except ApiError as exc:
                self._status(exc.code, exc.reason, exc.message)
                return
            self._send_json(200, obj)
            return
        namespace = route.namespace
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
            self._watch(params, matches, route.rt)
        else:
            items, rv = api._list(matches, route.rt.key)
            self._send_json(
                200,
                {
                    "kind": f"{route.rt.kind}List",
                    "apiVersion": route.rt.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )

    def _write(self, method: str) -> None:
        api = self.server.api
        req, path, params = self._request(method)
        raw = self._read_body()
        route = parse_path(api, path)
        if route is None:
            self._status(404, "NotFound", f"the server could not find {req.path}")
            return
        content_type = self.headers.get("Content-Type") or "application/json"
        try:
            body = decode_body(raw, content_type) if raw else None
            code, obj = write(api, method, route, body, content_type, params)
        except ApiError as exc:
            self._status(exc.code, exc.reason, exc.message)
            return
        self._send_json(code, obj)

    def do_POST(self) -> None:
        self._write("POST")

    def do_PUT(self) -> None:
        self._write("PUT")

    def do_PATCH(self) -> None:
        self._write("PATCH")

    def do_DELETE(self) -> None:
        self._write("DELETE")

    def _pod_log(self, namespace: str, pod: str, params: dict[str, str]) -> None:
        """The pod's log; with ``follow=true`` a chunked stream until the pod is deleted,
        the server stops or the client goes away."""
        api = self.server.api
        if params.get("follow", "") not in ("1", "true", "True"):
            data = api.log_text(namespace, pod).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        sent = 0
        try:
            while True:
                with api._cond:
                    while True:
                        text = api._logs[(namespace, pod)]
                        gone = (namespace, pod) not in api._pods
                        if len(text) > sent or gone or not api._serving:
                            break
                        if _peer_closed(self.connection):
                            return
                        api._cond.wait(0.05)
                if len(text) > sent:
                    self._chunk(text[sent:].encode())
                    sent = len(text)
                if gone or not api._serving:
                    self._chunk(b"")
                    return
        except OSError:
            return

    # ------------------------------------------------------------------ watch
    def _watch(
        self, params: dict[str, str], matches: Callable[[Pod | None], bool], rt: ResourceType
    ) -> None:
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
                    for p in api._store[rt.key].values()
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
                        if entry.resource != rt.key:
                            continue
                        translated = _translate(entry, matches)
                        if translated is not None:
                            out.append(translated)
                    cursor = api._rv
                    if state.pending_bookmarks and state.bookmarks:
                        out.append(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": rt.kind,
                                    "apiVersion": rt.api_version,
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
