"""A blocking CRI RuntimeService client (reads only) over the runtime's unix socket.

Messages are the protobuf classes generated from ``proto/cri/runtime/v1/api.proto``
(:mod:`syshub.topology.cri.runtime.v1.api_pb2`). ``runtime.v1alpha2`` uses the same
field numbers for every message here, so the client speaks it with the same classes by
calling the ``runtime.v1alpha2.RuntimeService`` method paths.

Needs ``grpcio`` and ``protobuf`` (``pip install 'syshub[cri]'``); import it through
:func:`syshub.topology.cri.new_client`, which says so in one line when they are missing.
Every failure is a :class:`~syshub.errors.CriError` whose one-line message names the
endpoint.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Mapping
from typing import Final, TypeVar

import grpc
from google.protobuf.message import Message

from syshub.errors import CriError
from syshub.topology.cri.runtime.v1 import api_pb2 as pb
from syshub.topology.model import Closing
from syshub.topology.resolve import (
    ContainerState,
    CriCallError,
    CriContainer,
    CriContainerStatus,
    CriPodSandbox,
    PodSandboxState,
)

__all__ = ["API_V1", "API_V1ALPHA2", "CriClient", "parse_endpoint"]

log = logging.getLogger(__name__)

API_V1: Final = "runtime.v1"
API_V1ALPHA2: Final = "runtime.v1alpha2"
#: the CRI version the kubelet announces in VersionRequest
_KUBELET_API_VERSION: Final = "0.1.0"
_MAX_MESSAGE: Final = 16 * 1024 * 1024

_Reply = TypeVar("_Reply", bound=Message)
_Enum = TypeVar("_Enum", bound=enum.IntEnum)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _enum(cls: type[_Enum], value: int, default: _Enum) -> _Enum:
    """``cls(value)``; ``default`` for a value from a newer runtime."""
    try:
        return cls(value)
    except ValueError:
        return default


def parse_endpoint(endpoint: str) -> str:
    """The socket path of ``unix:///path``, ``unix:/path`` or a plain path, made absolute."""
    text = endpoint.strip()
    if text.startswith("unix://"):
        path = text[len("unix://") :]
    elif text.startswith("unix:"):
        path = text[len("unix:") :]
    elif "://" in text:
        raise CriError(f"CRI endpoint {endpoint!r}: only unix:// sockets are supported")
    else:
        path = text
    if not path:
        raise CriError(f"CRI endpoint {endpoint!r}: empty socket path")
    return os.path.abspath(path)


# ------------------------------------------------------------------ protobuf -> values


def _info_pid(info: Mapping[str, str]) -> tuple[int, dict[str, object]]:
    """The init's host pid from a verbose reply's ``info`` JSON (0 if absent), and the JSON."""
    try:
        parsed = json.loads(info.get("info") or "{}")
    except ValueError:
        return 0, {}
    details: dict[str, object] = parsed if isinstance(parsed, dict) else {}
    pid = details.get("pid")
    return (pid if isinstance(pid, int) and pid > 0 else 0), details


def _container(m: pb.Container) -> CriContainer:
    return CriContainer(
        id=m.id,
        pod_sandbox_id=m.pod_sandbox_id,
        name=m.metadata.name,
        attempt=m.metadata.attempt,
        image=m.image.image,
        image_ref=m.image_ref,
        state=_enum(ContainerState, m.state, ContainerState.UNKNOWN),
        created_at=m.created_at,
        labels=dict(m.labels),
    )


def _container_status(resp: pb.ContainerStatusResponse) -> CriContainerStatus:
    m = resp.status
    info = dict(resp.info)
    pid, details = _info_pid(info)
    sandbox = details.get("sandboxID")
    return CriContainerStatus(
        id=m.id,
        name=m.metadata.name,
        attempt=m.metadata.attempt,
        state=_enum(ContainerState, m.state, ContainerState.UNKNOWN),
        created_at=m.created_at,
        started_at=m.started_at,
        finished_at=m.finished_at,
        exit_code=m.exit_code,
        image=m.image.image,
        image_ref=m.image_ref,
        reason=m.reason,
        message=m.message,
        log_path=m.log_path,
        pid=pid,
        pod_sandbox_id=sandbox if isinstance(sandbox, str) else "",
        labels=dict(m.labels),
        info=info,
    )


def _sandbox(m: pb.PodSandbox) -> CriPodSandbox:
    return CriPodSandbox(
        id=m.id,
        name=m.metadata.name,
        uid=m.metadata.uid,
        namespace=m.metadata.namespace,
        attempt=m.metadata.attempt,
        state=_enum(PodSandboxState, m.state, PodSandboxState.NOTREADY),
        created_at=m.created_at,
        runtime_handler=m.runtime_handler,
        labels=dict(m.labels),
    )


# ------------------------------------------------------------------ the client


class CriClient(Closing):
    """A blocking CRI RuntimeService client over a unix socket.

    ``connect`` checks the socket and negotiates ``runtime.v1`` (falling back to
    ``runtime.v1alpha2``); other methods connect on first use. Each call has a
    deadline of ``timeout`` seconds. Thread-safe (one gRPC channel).
    """

    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        self.endpoint = endpoint
        self.path = parse_endpoint(endpoint)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._service = ""

    def __repr__(self) -> str:
        return f"CriClient({self.endpoint!r}, api={self.api_version or 'not connected'})"

    @property
    def api_version(self) -> str:
        """``"runtime.v1"`` or ``"runtime.v1alpha2"`` once connected, else ``""``."""
        return self._service.rsplit(".", 1)[0] if self._service else ""

    @property
    def channel(self) -> grpc.Channel:
        """The connected gRPC channel (connects first)."""
        if self._channel is None:
            self.connect()
        channel = self._channel
        if channel is None:  # closed concurrently
            raise self._fail("client is closed")
        return channel

    # -------------------------------------------------------------- connection

    def _fail(self, what: str) -> CriError:
        return CriError(f"CRI endpoint {self.endpoint}: {what}")

    def _check_socket(self) -> None:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._fail(
                f"no such socket {self.path} (is the container runtime running?)"
            ) from None
        except PermissionError:
            raise self._fail(f"permission denied on {self.path} (run as root?)") from None
        except OSError as exc:
            raise self._fail(f"cannot stat {self.path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise self._fail(f"{self.path} is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(self.timeout)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            raise self._fail(f"nothing is listening on {self.path} (stale socket?)") from None
        except PermissionError:
            raise self._fail(f"permission denied connecting to {self.path}") from None
        except OSError as exc:
            raise self._fail(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        finally:
            probe.close()

    def connect(self) -> None:
        """Check the socket, open the channel and negotiate the API version."""
        with self._lock:
            if self._channel is not None:
                return
            self._check_socket()
            channel = grpc.insecure_channel(
                f"unix://{self.path}",
                options=[
                    ("grpc.max_receive_message_length", _MAX_MESSAGE),
                    ("grpc.max_send_message_length", _MAX_MESSAGE),
                ],
            )
            request = pb.VersionRequest(version=_KUBELET_API_VERSION)
            try:
                for api in (API_V1, API_V1ALPHA2):
                    service = f"{api}.RuntimeService"
                    try:
                        self._invoke(channel, service, "Version", request, pb.VersionResponse)
                    except CriCallError as exc:
                        if exc.code == "UNIMPLEMENTED":
                            continue
                        if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                            raise self._fail(
                                f"no CRI runtime answers on {self.path} within "
                                f"{self.timeout:g}s ({exc.code})"
                            ) from None
                        raise
                    self._service = service
                    self._channel = channel
                    log.debug("connected to %s (%s)", self.endpoint, api)
                    return
                raise self._fail("runtime implements neither runtime.v1 nor runtime.v1alpha2")
            finally:
                if self._channel is None:
                    channel.close()

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
            self._service = ""
        if channel is not None:
            channel.close()

    # -------------------------------------------------------------- calls

    def _invoke(
        self,
        channel: grpc.Channel,
        service: str,
        rpc: str,
        request: Message,
        reply: type[_Reply],
    ) -> _Reply:
        method = channel.unary_unary(
            f"/{service}/{rpc}",
            request_serializer=_serialize,
            response_deserializer=reply.FromString,
        )
        try:
            result: _Reply = method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = ""
            details = str(exc)
            if isinstance(exc, grpc.Call):
                status = exc.code()
                code = status.name if status is not None else ""
                details = exc.details() or code
            raise CriCallError(
                f"CRI endpoint {self.endpoint}: {rpc} failed: {code or 'error'}: "
                f"{_one_line(details)}",
                code=code,
                method=rpc,
            ) from None
        except ValueError as exc:  # e.g. the channel was closed concurrently
            raise CriCallError(
                f"CRI endpoint {self.endpoint}: {rpc} failed: {_one_line(str(exc))}", method=rpc
            ) from None
        return result

    def call(self, rpc: str, request: Message, reply: type[_Reply]) -> _Reply:
        """One RuntimeService call of the negotiated API version (connects first)."""
        channel = self.channel
        return self._invoke(channel, self._service, rpc, request, reply)

    def version(self) -> dict[str, str]:
        """Version of the runtime (``runtime_name``, ``runtime_version``, ...) plus
        ``api`` = the negotiated CRI API (``runtime.v1`` or ``runtime.v1alpha2``)."""
        resp = self.call(
            "Version", pb.VersionRequest(version=_KUBELET_API_VERSION), pb.VersionResponse
        )
        return {
            "version": resp.version,
            "runtime_name": resp.runtime_name,
            "runtime_version": resp.runtime_version,
            "runtime_api_version": resp.runtime_api_version,
            "api": self.api_version,
        }

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
        container_id: str = "",
    ) -> list[CriContainer]:
        flt = pb.ContainerFilter(
            id=container_id,
            state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)
            if state_running_only
            else None,
            pod_sandbox_id=pod_sandbox_id,
            label_selector=label_selector or {},
        )
        resp = self.call(
            "ListContainers", pb.ListContainersRequest(filter=flt), pb.ListContainersResponse
        )
        return [_container(m) for m in resp.containers]

    def container_status(self, container_id: str) -> CriContainerStatus:
        """Verbose status; the init's host pid comes from the ``info`` JSON."""
        req = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
        return _container_status(self.call("ContainerStatus", req, pb.ContainerStatusResponse))

    def list_pod_sandboxes(
        self,
        ready_only: bool = False,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
    ) -> list[CriPodSandbox]:
        flt = pb.PodSandboxFilter(
            id=pod_sandbox_id,
            state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY) if ready_only else None,
            label_selector=label_selector or {},
        )
        resp = self.call(
            "ListPodSandbox", pb.ListPodSandboxRequest(filter=flt), pb.ListPodSandboxResponse
        )
        return [_sandbox(m) for m in resp.items]
