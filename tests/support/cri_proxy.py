"""A unix socket in front of a real CRI socket (containerd's), to make the CRI unreadable
for a process that is told to use the proxy's path, and readable again:

* ``pass``: connections are forwarded to the real socket;
* ``missing``: the socket file does not exist (ENOENT);
* ``refuse``: a socket file nobody listens on (ECONNREFUSED: a runtime that died and left
  its socket behind);
* ``garbage``: connections are accepted and answered with bytes that are not HTTP/2.

Switching modes cuts every open connection, as a runtime restart would.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Literal

Mode = Literal["pass", "missing", "refuse", "garbage"]

GARBAGE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nthis is not a CRI runtime\r\n" * 8


class CriProxy:
    def __init__(self, upstream: Path, path: Path) -> None:
        self.upstream = upstream
        self.path = path
        self.mode: Mode = "missing"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []

    @property
    def endpoint(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> CriProxy:
        self.set("pass")
        return self

    def __exit__(self, *exc: object) -> None:
        self.set("missing")

    def set(self, mode: Mode) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
            self.mode = mode
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if mode == "missing":
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        with self._lock:
            self._listener = sock
        if mode == "refuse":
            return  # bound, never listening: connect() is refused
        sock.listen(64)
        threading.Thread(target=self._accept, args=(sock, mode), daemon=True).start()

    def _track(self, *socks: socket.socket) -> bool:
        with self._lock:
            if self._listener is None:
                return False
            self._conns.extend(socks)
            return True

    def _accept(self, listener: socket.socket, mode: Mode) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._track(client):
                client.close()
                return
            target = self._garbage if mode == "garbage" else self._forward
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _garbage(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.sendall(GARBAGE)
            while client.recv(65536):
                pass
        client.close()

    def _forward(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(str(self.upstream))
        except OSError:
            upstream.close()
            client.close()  # the runtime behind is down: the client sees the connection end
            return
        if not self._track(upstream):
            upstream.close()
            client.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
