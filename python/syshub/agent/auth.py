"""Who may talk to the agent over TCP.

- TLS: the server's certificate and key; with a client CA, clients must show a
  certificate it signed (checked in the handshake).
- Bearer tokens (``authorization: Bearer <token>`` metadata), read from files
  of one token a line: a token of ``token_file`` may do everything, one of
  ``read_token_file`` only read (CreateTrace / DeleteTrace are
  PERMISSION_DENIED). No or an unknown token: UNAUTHENTICATED. Health checks
  need no token.

The unix socket needs none of this: it is root's alone (mode 0600)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import grpc

from syshub.agent.config import AgentConfig, AgentConfigError
from syshub.agent.service import SERVICE, WRITE_METHODS

HEALTH_PREFIX: Final = "/grpc.health.v1.Health/"


def read_tokens(path: str, what: str) -> tuple[str, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise AgentConfigError(f"{what} {path}: {e.strerror or e}") from None
    tokens = tuple(t.strip() for t in text.splitlines() if t.strip() and not t.startswith("#"))
    if not tokens:
        raise AgentConfigError(f"{what} {path}: no token in the file")
    return tokens


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise AgentConfigError(f"{what} {path}: {e.strerror or e}") from None


def server_credentials(cfg: AgentConfig) -> grpc.ServerCredentials | None:
    """TLS credentials of the TCP listener (None: plain, with ``insecure``)."""
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    key = _read(cfg.tls_key, "tls_key")
    cert = _read(cfg.tls_cert, "tls_cert")
    ca = _read(cfg.tls_client_ca, "tls_client_ca") if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def _denied(code: grpc.StatusCode, message: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def abort(_req: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    return abort


class TokenAuth(grpc.ServerInterceptor):
    """Bearer-token check in front of every method but health checks."""

    def __init__(self, full: tuple[str, ...], read: tuple[str, ...]) -> None:
        self.full = full
        self.read = read

    @staticmethod
    def of(cfg: AgentConfig) -> TokenAuth | None:
        full = read_tokens(cfg.token_file, "token_file") if cfg.token_file else ()
        read = read_tokens(cfg.read_token_file, "read_token_file") if cfg.read_token_file else ()
        return TokenAuth(full, read) if full or read else None

    @staticmethod
    def _known(token: str, tokens: tuple[str, ...]) -> bool:
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens)

    def check(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> str | None:
        """None if allowed, else "unauthenticated" / "denied"."""
        if method.startswith(HEALTH_PREFIX):
            return None
        header = next((str(v) for k, v in metadata if k == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "unauthenticated"
        if self._known(token.strip(), self.full):
            return None
        if not self._known(token.strip(), self.read):
            return "unauthenticated"
        name = method.rpartition("/")[2]
        if method.startswith(f"/{SERVICE}/") and name in WRITE_METHODS:
            return "denied"
        return None

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        verdict = self.check(details.method, tuple(details.invocation_metadata or ()))
        handler = continuation(details)
        if verdict is None or handler is None:
            return handler
        if verdict == "denied":
            fn = _denied(
                grpc.StatusCode.PERMISSION_DENIED,
                f"authorization: this token may only read; {details.method} changes traces",
            )
        else:
            fn = _denied(
                grpc.StatusCode.UNAUTHENTICATED,
                "authorization: a valid 'Bearer <token>' is required",
            )
        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
        return make(fn, request_deserializer=handler.request_deserializer)
