"""A TCP proxy in front of the local API server (support.k8s_apiserver) that
injects faults into new connections, for the API-server fault tests:

* ``pass``: forward bytes both ways;
* ``refuse``: accept and close at once (the server is unreachable);
* ``slow``: forward, but hold every chunk from the server ``delay`` seconds;
* ``http500``: answer every request ``500 Internal Server Error`` (a JSON Status);
* ``garbage``: answer every request with random bytes, then close.

Requests are counted per mode, so a test can see the client's retries."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import Counter
from typing import Literal

Mode = Literal["pass", "refuse", "slow", "http500", "garbage"]

_STATUS_500 = (
    b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected",'
    b'"reason":"InternalError","code":500}'
)


class FaultProxy:
    def __init__(self, upstream_port: int, delay: float = 2.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = delay
        self.mode: Mode = "pass"
        self.connections: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def set(self, mode: Mode, *, cut: bool = True) -> None:
        """Faults apply to new connections; ``cut`` also ends the open ones
        (a watch in progress then reconnects and meets the fault)."""
        self.mode = mode
        if cut:
            with self._lock:
                conns, self._open = list(self._open), set()
            for c in conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()

    def close(self) -> None:
        self._stop.set()
        self.set("refuse")
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            mode = self.mode
            self.connections[mode] += 1
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _serve(self, client: socket.socket, mode: Mode) -> None:
        with contextlib.closing(client):
            if mode == "refuse":
                return
            if mode in ("http500", "garbage"):
                with contextlib.suppress(OSError):
                    client.settimeout(5)
                    client.recv(65536)  # the request (or its start)
                    if mode == "http500":
                        head = (
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json"
                            f"\r\nContent-Length: {len(_STATUS_500)}\r\nConnection: close\r\n\r\n"
                        )
                        client.sendall(head.encode() + _STATUS_500)
                    else:
                        client.sendall(os.urandom(512))
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            self._track(client, upstream)
            with contextlib.closing(upstream):
                t = threading.Thread(target=self._pipe, args=(client, upstream, 0.0), daemon=True)
                t.start()
                self._pipe(upstream, client, self.delay if mode == "slow" else 0.0)
                t.join(timeout=1)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
