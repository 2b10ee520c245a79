"""Where an agent is and how to reach it: ``unix:///path`` (or a plain path)
for the local socket; ``host:port`` for TCP, with TLS by default (server CA,
optional client certificate, optional bearer token), plain only with
``insecure=True``. Shared by the sync and asyncio clients."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc

from syshub.errors import SyshubError

DEFAULT_AGENT: Final = "unix:///run/syshub/agent.sock"
MAX_MESSAGE: Final = 64 << 20


class AgentError(SyshubError):
    """A call to an agent failed; ``code`` is the gRPC status code's name."""

    def __init__(self, agent: str, code: str, message: str) -> None:
        super().__init__(f"agent {agent}: {code}: {message}")
        self.agent = agent
        self.code = code
        self.details = message


@dataclass(frozen=True)
class Endpoint:
    """One agent address and its transport settings."""

    target: str
    """As given (for messages)."""
    address: str
    """gRPC target: ``unix:/abs/path`` or ``host:port``."""
    unix: bool
    tls: bool
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    token: str | None = None
    server_name: str | None = None

    def options(self) -> list[tuple[str, object]]:
        opts: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
        if self.unix:
            opts.append(("grpc.default_authority", "localhost"))
        if self.server_name:
            opts.append(("grpc.ssl_target_name_override", self.server_name))
        return opts

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def channel(self) -> grpc.Channel:
        if self.tls:
            return grpc.secure_channel(self.address, self.credentials(), self.options())
        return grpc.insecure_channel(self.address, self.options())

    def aio_channel(self) -> grpc.aio.Channel:
        if self.tls:
            return grpc.aio.secure_channel(self.address, self.credentials(), self.options())
        return grpc.aio.insecure_channel(self.address, self.options())


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SyshubError(f"{what} {path}: {e.strerror or e}") from None


def endpoint(
    target: str = DEFAULT_AGENT,
    *,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    token: str | None = None,
    token_file: str | None = None,
    insecure: bool = False,
    server_name: str | None = None,
) -> Endpoint:
    """An :class:`Endpoint` for ``target`` (``unix:///path``, ``/path`` or ``host:port``)."""
    text = target.strip()
    if text.startswith("unix:") or text.startswith("/"):
        path = text.removeprefix("unix://") if text.startswith("unix://") else text
        path = path.removeprefix("unix:")
        if not path:
            raise SyshubError(f"agent {target!r}: empty socket path")
        return Endpoint(target, f"unix:{os.path.abspath(path)}", unix=True, tls=False)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SyshubError(f"agent {target!r}: expected unix:///PATH or HOST:PORT")
    if (tls_cert is None) != (tls_key is None):
        raise SyshubError("--tls-cert and --tls-key go together")
    if token is None and token_file is not None:
        raw = _read(token_file, "token file") or b""
        token = raw.decode().strip().splitlines()[0].strip() if raw.strip() else None
        if not token:
            raise SyshubError(f"token file {token_file}: empty")
    return Endpoint(
        target,
        text,
        unix=False,
        tls=not insecure,
        ca=_read(tls_ca, "TLS CA"),
        cert=_read(tls_cert, "TLS certificate"),
        key=_read(tls_key, "TLS key"),
        token=token,
        server_name=server_name,
    )


def rpc_error(ep: Endpoint, e: grpc.RpcError) -> AgentError:
    """A one-line :class:`AgentError` of a failed call."""
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else None
    name = code.name if code is not None else "UNKNOWN"
    return AgentError(ep.target, name, " ".join(str(details or e).split()))
