"""Checking the agent's requests: each problem is a :class:`RequestError` with
the gRPC status it is answered with and a one-line message that starts with
the request field at fault (``manifest: spec.syscalls[1]: ...``,
``path: ...``, ``target.pid: ...``). Pure: no Hub, no server."""

from __future__ import annotations

import math
import os
from typing import Final

import grpc

from syshub.errors import HubError, SyscallNameError, TraceSpecError
from syshub.hub.jobs import Target
from syshub.hub.plan import CaptureSizes
from syshub.hub.router import path_key
from syshub.spec.trace import Trace
from syshub.v1 import agent_pb2 as pb

DEFAULT_NAMESPACE: Final = "default"
DEFAULT_WAIT: Final = 5.0
MAX_WAIT: Final = 60.0
#: Largest manifest accepted (bytes).
MAX_MANIFEST: Final = 1 << 20


class RequestError(Exception):
    """A request the agent refuses: ``code`` and a one-line message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}")


def trace_key(ref: pb.TraceRef, field: str = "name") -> tuple[str, str]:
    """(namespace, name) of a reference; the name is required. An empty
    namespace is looked up as "default", then as "" (a Trace of every
    namespace, swoll's convention)."""
    if not ref.name:
        raise invalid(field, "a trace name is required")
    return (ref.namespace, ref.name)


def parse_manifest(text: str) -> Trace:
    """Exactly one Trace (YAML or JSON, syshub.io or swoll's API group)."""
    if not text.strip():
        raise invalid("manifest", "empty: give one Trace manifest (YAML or JSON)")
    if len(text.encode()) > MAX_MANIFEST:
        raise invalid("manifest", f"larger than {MAX_MANIFEST} bytes")
    try:
        return Trace.from_yaml(text)
    except TraceSpecError as e:
        raise invalid("manifest", str(e)) from None
    except (ValueError, TypeError) as e:
        raise invalid("manifest", " ".join(str(e).split())) from None


def parse_path(text: str) -> tuple[str, ...]:
    """A ``namespace/pod/container/syscall`` prefix (the syscall canonical);
    ``""`` is every event the agent's traces receive."""
    if not text.strip("/"):
        return ()
    parts = text.split("/")
    if len(parts) > 4:
        raise invalid("path", f"at most 4 parts (namespace/pod/container/syscall), got {text!r}")
    try:
        return path_key(parts)
    except SyscallNameError as e:
        raise invalid("path", f"syscall part: {e}") from None
    except HubError as e:
        raise invalid("path", str(e)) from None


def wait_seconds(value: float) -> float:
    if value == 0:
        return DEFAULT_WAIT
    if not math.isfinite(value) or value < 0 or value > MAX_WAIT:
        raise invalid("wait_applied_seconds", f"must be in 0..{MAX_WAIT:g} seconds, got {value}")
    return value


def _pid(value: int, field: str) -> int:
    if value <= 0:
        raise invalid(field, f"must be a process id > 0, got {value}")
    if not os.path.exists(f"/proc/{value}"):
        raise invalid(field, f"no such process: {value}")
    return value


def target_of(msg: pb.TraceTarget) -> Target:
    """The job's target (unset: the containers matching the Trace)."""
    kind = msg.WhichOneof("kind")
    if kind is None:
        return Target.containers()
    if kind == "host":
        if not msg.host:
            raise invalid("target.host", "must be true when set")
        return Target.every_namespace()
    if kind == "pid":
        return Target.process(_pid(msg.pid, "target.pid"))
    return Target.namespace_of(_pid(msg.namespace_of, "target.namespace_of"))


def capture_of(msg: pb.Capture) -> CaptureSizes | None:
    """A :class:`~syshub.spec.limits.Capture`; None when every size is the default."""
    if not (msg.str_max or msg.argv_max or msg.buf_max or msg.durations):
        return None
    from syshub.spec import limits

    try:
        return limits.Capture(
            str_max=msg.str_max or limits.DEFAULT_STR_MAX,
            argv_max=msg.argv_max or limits.DEFAULT_ARGV_MAX,
            buf_max=msg.buf_max or limits.DEFAULT_BUF_MAX,
            durations=msg.durations,
        )
    except TraceSpecError as e:  # names the field: capture.strMax
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None


def positive(value: int, default: int, high: int, field: str) -> int:
    """A size from a request: 0 is ``default``; at most ``high``."""
    if value == 0:
        return default
    if value > high:
        raise invalid(field, f"must be at most {high}, got {value}")
    return value
