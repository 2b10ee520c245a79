"""CRI (Container Runtime Interface) client and observer.

:class:`CriClient` speaks the kubelet's gRPC protocol to a container runtime
(containerd, CRI-O) over its unix socket. Messages are hand-encoded with
:mod:`syshub.topology.protowire` using the field numbers of
``k8s.io/cri-api/pkg/apis/runtime/v1/api.proto``; ``runtime.v1alpha2`` uses
the same numbers for every message used here, so one codec serves both.

:class:`CriObserver` turns the runtime's running containers into
:class:`~syshub.topology.Container` values (host pid of the container init and
the inode of its pid namespace) and reports starts and stops by polling. It
works without Kubernetes: pod, namespace and pod uid come from the labels the
kubelet sets on containers and sandboxes, when present.

Every failure is a :class:`~syshub.errors.CriError` whose one-line message
names the endpoint.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

import grpc

from syshub.errors import CriError
from syshub.topology.base import Container, ContainerEvent, ContainerEventKind, EmitFn
from syshub.topology.protowire import Message, WireError, Writer

__all__ = [
    "ContainerConfig",
    "ContainerState",
    "CriCallError",
    "CriClient",
    "CriContainer",
    "CriContainerStatus",
    "CriObserver",
    "CriPodSandbox",
    "CriPodSandboxStatus",
    "CriRuntime",
    "NamespaceMode",
    "PodSandboxConfig",
    "PodSandboxState",
    "ProcessGoneError",
    "parse_endpoint",
    "pid_namespace_inode",
]

log = logging.getLogger(__name__)

API_V1: Final = "runtime.v1"
API_V1ALPHA2: Final = "runtime.v1alpha2"
#: the CRI version the kubelet announces in VersionRequest
_KUBELET_API_VERSION: Final = "0.1.0"
_MAX_MESSAGE: Final = 16 * 1024 * 1024

LABEL_POD_NAME: Final = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE: Final = "io.kubernetes.pod.namespace"
LABEL_POD_UID: Final = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME: Final = "io.kubernetes.container.name"


def _frozen(m: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# =============================================================================== errors


class CriCallError(CriError):
    """A CRI call reached the runtime and failed; ``code`` is the gRPC status name
    (``"NOT_FOUND"``, ``"UNAVAILABLE"``, ...) or ``""`` when there was none."""

    def __init__(self, message: str, *, code: str = "", method: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.method = method


class ProcessGoneError(CriError, ProcessLookupError):
    """The process (a container init) no longer exists."""


# =============================================================================== enums


class ContainerState(enum.IntEnum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3

    @classmethod
    def parse(cls, value: int) -> ContainerState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class PodSandboxState(enum.IntEnum):
    READY = 0
    NOTREADY = 1

    @classmethod
    def parse(cls, value: int) -> PodSandboxState:
        return cls.READY if value == 0 else cls.NOTREADY


class NamespaceMode(enum.IntEnum):
    """CRI ``NamespaceMode``: POD shares with the pod, CONTAINER is private, NODE is the host's."""

    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3

    @classmethod
    def parse(cls, value: int) -> NamespaceMode:
        try:
            return cls(value)
        except ValueError:
            return cls.POD


# =============================================================================== results


@dataclass(frozen=True, slots=True)
class CriContainer:
    """One entry of ListContainers. Times are nanoseconds since the epoch."""

    id: str
    pod_sandbox_id: str
    name: str
    attempt: int
    image: str
    image_ref: str
    state: ContainerState
    created_at: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))


@dataclass(frozen=True, slots=True)
class CriContainerStatus:
    """ContainerStatus (verbose). ``pid`` is the host pid of the container init
    (0 when the runtime did not report one, e.g. the container is not running)."""

    id: str
    name: str
    attempt: int
    state: ContainerState
    created_at: int
    started_at: int
    finished_at: int
    exit_code: int
    image: str
    image_ref: str
    reason: str
    message: str
    log_path: str
    pid: int
    pod_sandbox_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    info: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))
        object.__setattr__(self, "info", _frozen(self.info))


@dataclass(frozen=True, slots=True)
class CriPodSandbox:
    """One entry of ListPodSandbox."""

    id: str
    name: str
    uid: str
    namespace: str
    attempt: int
    state: PodSandboxState
    created_at: int
    runtime_handler: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))


@dataclass(frozen=True, slots=True)
class CriPodSandboxStatus:
    """PodSandboxStatus (verbose); ``pid`` is the sandbox init's host pid when reported."""

    id: str
    name: str
    uid: str
    namespace: str
    attempt: int
    state: PodSandboxState
    created_at: int
    ip: str
    additional_ips: tuple[str, ...]
    network: NamespaceMode
    pid_mode: NamespaceMode
    ipc: NamespaceMode
    runtime_handler: str
    pid: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    info: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))
        object.__setattr__(self, "info", _frozen(self.info))


# =============================================================================== configs


def _namespace_option(network: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) -> Writer:
    return Writer().varint(1, network).varint(2, pid).varint(3, ipc)


@dataclass(frozen=True)
class PodSandboxConfig:
    """What RunPodSandbox needs (a subset of CRI ``PodSandboxConfig``).

    A pod on the host network (``network=NODE``) must leave ``hostname`` empty:
    runc cannot set a hostname without a private UTS namespace.
    """

    name: str
    namespace: str = "default"
    uid: str = ""
    attempt: int = 0
    hostname: str = ""
    log_directory: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    network: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.CONTAINER
    ipc: NamespaceMode = NamespaceMode.POD
    cgroup_parent: str = ""

    def encode(self) -> bytes:
        metadata = (
            Writer()
            .string(1, self.name)
            .string(2, self.uid)
            .string(3, self.namespace)
            .varint(4, self.attempt)
        )
        security = Writer().message(1, _namespace_option(self.network, self.pid, self.ipc))
        linux = Writer().string(1, self.cgroup_parent).message(2, security)
        return (
            Writer()
            .message(1, metadata)
            .string(2, self.hostname)
            .string(3, self.log_directory)
            .map_str(6, self.labels)
            .map_str(7, self.annotations)
            .message(8, linux)
            .finish()
        )


@dataclass(frozen=True)
class ContainerConfig:
    """What CreateContainer needs (a subset of CRI ``ContainerConfig``).

    The namespace modes go into the container's security context; the kubelet
    repeats the pod's network/ipc modes there and sets ``pid=CONTAINER``.
    """

    name: str
    image: str
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    working_dir: str = ""
    envs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 0
    log_path: str = ""
    network: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.CONTAINER
    ipc: NamespaceMode = NamespaceMode.POD
    privileged: bool = False

    def encode(self) -> bytes:
        security = (
            Writer()
            .boolean(2, self.privileged)
            .message(3, _namespace_option(self.network, self.pid, self.ipc))
        )
        return (
            Writer()
            .message(1, Writer().string(1, self.name).varint(2, self.attempt))
            .message(2, Writer().string(1, self.image))
            .repeated_string(3, self.command)
            .repeated_string(4, self.args)
            .string(5, self.working_dir)
            .repeated_message(
                6, [Writer().string(1, k).string(2, v) for k, v in sorted(self.envs.items())]
            )
            .map_str(9, self.labels)
            .map_str(10, self.annotations)
            .string(11, self.log_path)
            .message(15, Writer().message(2, security))
            .finish()
        )


# =============================================================================== decoding


def _decode_container(m: Message) -> CriContainer:
    meta = m.message_or_empty(3)
    return CriContainer(
        id=m.string(1),
        pod_sandbox_id=m.string(2),
        name=meta.string(1),
        attempt=meta.uint(2),
        image=m.message_or_empty(4).string(1),
        image_ref=m.string(5),
        state=ContainerState.parse(m.int32(6)),
        created_at=m.int64(7),
        labels=m.map_str(8),
        annotations=m.map_str(9),
    )


def _verbose_info(info: Mapping[str, str]) -> dict[str, object]:
    raw = info.get("info")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _info_pid(details: Mapping[str, object]) -> int:
    pid = details.get("pid")
    return pid if isinstance(pid, int) and pid > 0 else 0


def _decode_container_status(resp: Message) -> CriContainerStatus:
    m = resp.message_or_empty(1)
    meta = m.message_or_empty(2)
    info = resp.map_str(2)
    details = _verbose_info(info)
    sandbox = details.get("sandboxID")
    return CriContainerStatus(
        id=m.string(1),
        name=meta.string(1),
        attempt=meta.uint(2),
        state=ContainerState.parse(m.int32(3)),
        created_at=m.int64(4),
        started_at=m.int64(5),
        finished_at=m.int64(6),
        exit_code=m.int32(7),
        image=m.message_or_empty(8).string(1),
        image_ref=m.string(9),
        reason=m.string(10),
        message=m.string(11),
        log_path=m.string(15),
        pid=_info_pid(details),
        pod_sandbox_id=sandbox if isinstance(sandbox, str) else "",
        labels=m.map_str(12),
        annotations=m.map_str(13),
        info=info,
    )


def _decode_sandbox(m: Message) -> CriPodSandbox:
    meta = m.message_or_empty(2)
    return CriPodSandbox(
        id=m.string(1),
        name=meta.string(1),
        uid=meta.string(2),
        namespace=meta.string(3),
        attempt=meta.uint(4),
        state=PodSandboxState.parse(m.int32(3)),
        created_at=m.int64(4),
        labels=m.map_str(5),
        annotations=m.map_str(6),
        runtime_handler=m.string(7),
    )


def _decode_sandbox_status(resp: Message) -> CriPodSandboxStatus:
    m = resp.message_or_empty(1)
    meta = m.message_or_empty(2)
    network = m.message_or_empty(5)
    options = m.message_or_empty(6).message_or_empty(1).message_or_empty(2)
    info = resp.map_str(2)
    return CriPodSandboxStatus(
        id=m.string(1),
        name=meta.string(1),
        uid=meta.string(2),
        namespace=meta.string(3),
        attempt=meta.uint(4),
        state=PodSandboxState.parse(m.int32(3)),
        created_at=m.int64(4),
        ip=network.string(1),
        additional_ips=tuple(ip.string(1) for ip in network.repeated_message(2)),
        network=NamespaceMode.parse(options.int32(1)),
        pid_mode=NamespaceMode.parse(options.int32(2)),
        ipc=NamespaceMode.parse(options.int32(3)),
        runtime_handler=m.string(9),
        pid=_info_pid(_verbose_info(info)),
        labels=m.map_str(7),
        annotations=m.map_str(8),
        info=info,
    )


# =============================================================================== client


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


def _identity(data: bytes) -> bytes:
    return data


class CriClient:
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
        self._version: dict[str, str] = {}

    def __enter__(self) -> CriClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CriClient({self.endpoint!r}, api={self.api_version or 'not connected'})"

    @property
    def api_version(self) -> str:
        """``"runtime.v1"`` or ``"runtime.v1alpha2"`` once connected, else ``""``."""
        return self._service.rsplit(".", 1)[0] if self._service else ""

    # ------------------------------------------------------------------ connection

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
            request = Writer().string(1, _KUBELET_API_VERSION).finish()
            try:
                for api in (API_V1, API_V1ALPHA2):
                    service = f"{api}.RuntimeService"
                    try:
                        resp = self._invoke(channel, f"/{service}/Version", request)
                    except CriCallError as exc:
                        if exc.code == "UNIMPLEMENTED":
                            continue
                        if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                            raise self._fail(
                                f"no CRI runtime answers on {self.path} within "
                                f"{self.timeout:g}s ({exc.code})"
                            ) from None
                        raise
                    self._version = self._decode_version(resp)
                    self._service = service
                    self._channel = channel
                    log.debug("connected to %s: %s", self.endpoint, self._version)
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

    # ------------------------------------------------------------------ calls

    def _invoke(self, channel: grpc.Channel, method: str, request: bytes) -> Message:
        stub = channel.unary_unary(
            method, request_serializer=_identity, response_deserializer=_identity
        )
        name = method.rsplit("/", 1)[-1]
        try:
            data = stub(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = ""
            details = str(exc)
            if isinstance(exc, grpc.Call):
                status = exc.code()
                code = status.name if status is not None else ""
                details = exc.details() or code
            raise CriCallError(
                f"CRI endpoint {self.endpoint}: {name} failed: {code or 'error'}: "
                f"{_one_line(details)}",
                code=code,
                method=name,
            ) from None
        except ValueError as exc:  # e.g. the channel was closed concurrently
            raise CriCallError(
                f"CRI endpoint {self.endpoint}: {name} failed: {_one_line(str(exc))}",
                method=name,
            ) from None
        try:
            return Message(data)
        except WireError as exc:
            raise CriCallError(
                f"CRI endpoint {self.endpoint}: {name} returned a malformed reply: {exc}",
                method=name,
            ) from None

    def _call(self, rpc: str, request: Writer) -> Message:
        if self._channel is None:
            self.connect()
        channel = self._channel
        if channel is None:  # closed concurrently
            raise self._fail("client is closed")
        return self._invoke(channel, f"/{self._service}/{rpc}", request.finish())

    @staticmethod
    def _decode_version(m: Message) -> dict[str, str]:
        return {
            "version": m.string(1),
            "runtime_name": m.string(2),
            "runtime_version": m.string(3),
            "runtime_api_version": m.string(4),
        }

    def version(self) -> dict[str, str]:
        """Version of the runtime (``runtime_name``, ``runtime_version``, ...) plus
        ``api`` = the negotiated CRI API (``runtime.v1`` or ``runtime.v1alpha2``)."""
        resp = self._call("Version", Writer().string(1, _KUBELET_API_VERSION))
        out = self._decode_version(resp)
        out["api"] = self.api_version
        return out

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
        container_id: str = "",
    ) -> list[CriContainer]:
        flt = Writer().string(1, container_id).string(3, pod_sandbox_id)
        if state_running_only:
            flt.message(2, Writer().varint(1, ContainerState.RUNNING))
        flt.map_str(4, label_selector)
        resp = self._call("ListContainers", Writer().message(1, flt))
        return [_decode_container(m) for m in resp.repeated_message(1)]

    def container_status(self, container_id: str) -> CriContainerStatus:
        """Verbose status; the init's host pid comes from the ``info`` JSON."""
        req = Writer().string(1, container_id, always=True).boolean(2, True)
        return _decode_container_status(self._call("ContainerStatus", req))

    def list_pod_sandboxes(
        self,
        ready_only: bool = False,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
    ) -> list[CriPodSandbox]:
        flt = Writer().string(1, pod_sandbox_id)
        if ready_only:
            flt.message(2, Writer().varint(1, PodSandboxState.READY))
        flt.map_str(3, label_selector)
        resp = self._call("ListPodSandbox", Writer().message(1, flt))
        return [_decode_sandbox(m) for m in resp.repeated_message(1)]

    def pod_sandbox_status(self, pod_sandbox_id: str) -> CriPodSandboxStatus:
        req = Writer().string(1, pod_sandbox_id, always=True).boolean(2, True)
        return _decode_sandbox_status(self._call("PodSandboxStatus", req))

    # ------------------------------------------------------------------ lifecycle
    # (used by tests and tools; syshub itself only reads)

    def run_pod_sandbox(self, config: PodSandboxConfig, runtime_handler: str = "") -> str:
        req = Writer().message(1, config.encode()).string(2, runtime_handler)
        return self._call("RunPodSandbox", req).string(1)

    def create_container(
        self, pod_sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig
    ) -> str:
        req = (
            Writer()
            .string(1, pod_sandbox_id, always=True)
            .message(2, config.encode())
            .message(3, sandbox_config.encode())
        )
        return self._call("CreateContainer", req).string(1)

    def start_container(self, container_id: str) -> None:
        self._call("StartContainer", Writer().string(1, container_id, always=True))

    def stop_container(self, container_id: str, timeout: int = 0) -> None:
        """Stop with a grace period of ``timeout`` seconds (0: kill at once)."""
        self._call(
            "StopContainer", Writer().string(1, container_id, always=True).varint(2, timeout)
        )

    def remove_container(self, container_id: str) -> None:
        self._call("RemoveContainer", Writer().string(1, container_id, always=True))

    def stop_pod_sandbox(self, pod_sandbox_id: str) -> None:
        self._call("StopPodSandbox", Writer().string(1, pod_sandbox_id, always=True))

    def remove_pod_sandbox(self, pod_sandbox_id: str) -> None:
        self._call("RemovePodSandbox", Writer().string(1, pod_sandbox_id, always=True))


# =============================================================================== pid namespaces


def pid_namespace_inode(pid: int, alt_root: str = "/") -> int:
    """Inode of the pid namespace of host process ``pid`` (``/proc/<pid>/ns/pid``).

    ``alt_root`` is where the host's filesystem (its ``/proc``) is mounted when
    syshub runs in a container. Raises :class:`ProcessGoneError` (a
    ``ProcessLookupError``) when the process no longer exists.
    """
    if pid <= 0:
        raise ProcessGoneError(f"invalid pid {pid}")
    path = os.path.join(alt_root, "proc", str(pid), "ns", "pid")
    try:
        return os.stat(path).st_ino
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGoneError(f"process {pid} is gone ({path} does not exist)") from None
    except PermissionError:
        raise CriError(f"permission denied reading {path} (needs root)") from None
    except OSError as exc:
        raise CriError(f"cannot read {path}: {exc.strerror or exc}") from None


# =============================================================================== observer


@runtime_checkable
class CriRuntime(Protocol):
    """What :class:`CriObserver` needs from a client (tests pass a fake)."""

    def connect(self) -> None: ...

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
        container_id: str = "",
    ) -> list[CriContainer]: ...

    def container_status(self, container_id: str) -> CriContainerStatus: ...

    def list_pod_sandboxes(
        self,
        ready_only: bool = False,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
    ) -> list[CriPodSandbox]: ...

    def close(self) -> None: ...


Matcher = Callable[[Mapping[str, str]], bool]


def _matcher(selector: object | None, what: str) -> Matcher | None:
    """None -> no constraint; dict -> all pairs must match; else an object with ``.matches``."""
    if selector is None:
        return None
    if isinstance(selector, Mapping):
        required = {str(k): str(v) for k, v in selector.items()}

        def match_all(values: Mapping[str, str]) -> bool:
            return all(values.get(k) == v for k, v in required.items())

        return match_all
    method = getattr(selector, "matches", None)
    if callable(method):

        def call_matches(values: Mapping[str, str]) -> bool:
            return bool(method(values))

        return call_matches
    raise TypeError(
        f"{what} must be None, a dict of required values or an object with a "
        f".matches(mapping) method, not {type(selector).__name__}"
    )


def container_fields(c: Container) -> dict[str, str]:
    """The field-selector view of a running container: its pod's Kubernetes field paths."""
    return {
        "metadata.name": c.pod,
        "metadata.namespace": c.namespace,
        "metadata.uid": c.pod_uid,
        "spec.nodeName": c.node,
        "status.phase": "Running",
    }


@dataclass(frozen=True)
class _Filter:
    namespace: str | None = None
    labels: Matcher | None = None
    fields: Matcher | None = None

    def matches(self, c: Container) -> bool:
        if self.namespace is not None and c.namespace != self.namespace:
            return False
        if self.labels is not None and not self.labels({**c.pod_labels, **c.labels}):
            return False
        return self.fields is None or self.fields(container_fields(c))


class _Source:
    """State shared by an observer and its copies: one client, one poll, one cache."""

    def __init__(self, client: CriRuntime, alt_root: str, owns_client: bool, node: str) -> None:
        self.client = client
        self.node = node
        self.alt_root = alt_root
        self.owns_client = owns_client
        self.lock = threading.Lock()
        self.connected = False
        self.resolved: dict[str, Container] = {}
        self.gone: set[str] = set()
        self.sandboxes: dict[str, CriPodSandbox] = {}
        self.snapshot_at = 0.0
        self.last: list[Container] | None = None
        self.closed = threading.Event()

    def connect(self) -> None:
        with self.lock:
            if not self.connected:
                self.client.connect()
                self.connected = True

    def snapshot(self, max_age: float = 0.0) -> list[Container]:
        """Resolved running containers; reuses a snapshot younger than ``max_age``."""
        if not self.connected:
            self.connect()
        with self.lock:
            now = time.monotonic()
            if self.last is not None and now - self.snapshot_at < max_age:
                return self.last
            running = self.client.list_containers(state_running_only=True)
            ids = {c.id for c in running}
            self.resolved = {k: v for k, v in self.resolved.items() if k in ids}
            self.gone &= ids
            if any(c.pod_sandbox_id not in self.sandboxes for c in running):
                self.sandboxes = {p.id: p for p in self.client.list_pod_sandboxes()}
            out: list[Container] = []
            for c in running:
                if c.id in self.gone:
                    continue
                value = self.resolved.get(c.id)
                if value is None:
                    value = self._resolve(c)
                    if value is None:
                        self.gone.add(c.id)
                        continue
                    self.resolved[c.id] = value
                out.append(value)
            self.last = out
            self.snapshot_at = time.monotonic()
            return out

    def _resolve(self, c: CriContainer) -> Container | None:
        try:
            status = self.client.container_status(c.id)
        except CriCallError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        if status.state != ContainerState.RUNNING:
            return None
        if status.pid <= 0:
            log.warning("CRI container %s: runtime reports no pid; not tracked", c.id[:13])
            return None
        try:
            pid_ns = pid_namespace_inode(status.pid, self.alt_root)
        except ProcessGoneError:
            return None
        labels = dict(c.labels) or dict(status.labels)
        sandbox = self.sandboxes.get(c.pod_sandbox_id)
        pod_labels = dict(sandbox.labels) if sandbox else {}
        return Container(
            id=c.id,
            name=labels.get(LABEL_CONTAINER_NAME) or c.name or status.name,
            pid=status.pid,
            pid_ns=pid_ns,
            pod=labels.get(LABEL_POD_NAME)
            or pod_labels.get(LABEL_POD_NAME)
            or (sandbox.name if sandbox else ""),
            namespace=labels.get(LABEL_POD_NAMESPACE)
            or pod_labels.get(LABEL_POD_NAMESPACE)
            or (sandbox.namespace if sandbox else ""),
            pod_uid=labels.get(LABEL_POD_UID)
            or pod_labels.get(LABEL_POD_UID)
            or (sandbox.uid if sandbox else ""),
            sandbox_id=c.pod_sandbox_id,
            image=status.image or c.image,
            labels=labels,
            pod_labels=pod_labels,
            node=self.node,
        )

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            self.connected = False
            self.last = None
            self.resolved.clear()
        if self.owns_client:
            self.client.close()


class CriObserver:
    """Containers of a CRI runtime (no Kubernetes needed), found by polling.

    ``containers()`` lists running containers matching the observer's
    restrictions; ``run(emit, stop)`` emits START for each, then polls every
    ``poll_interval`` seconds and emits STOP/START for changes (a restarted
    container has a new id: STOP old, then START new). A container whose
    process has already exited is skipped. Copies share the client and the
    poll (one ListContainers per interval however many copies run).

    ``label_selector`` and ``field_selector`` are ``None``, a ``dict`` of
    required values, or an object with ``matches(mapping) -> bool``. Labels are
    the pod's (sandbox) labels overlaid with the container's; fields are
    those of :func:`container_fields` (``metadata.name``, ``metadata.namespace``,
    ``metadata.uid``, ``spec.nodeName``, ``status.phase``). ``node`` fills
    ``Container.node`` (the runtime does not know the Kubernetes node name).
    """

    _MAX_BACKOFF: Final = 10.0

    def __init__(
        self,
        endpoint: str,
        alt_root: str = "/",
        namespace: str | None = None,
        label_selector: object | None = None,
        poll_interval: float = 0.5,
        client: CriRuntime | None = None,
        field_selector: object | None = None,
        node: str = "",
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self.endpoint = endpoint
        self.alt_root = alt_root
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.poll_interval = poll_interval
        owns = client is None
        runtime: CriRuntime = client if client is not None else CriClient(endpoint)
        self._source = _Source(runtime, alt_root, owns_client=owns, node=node)
        self._filters: tuple[_Filter, ...] = (
            _Filter(
                namespace,
                _matcher(label_selector, "label_selector"),
                _matcher(field_selector, "field_selector"),
            ),
        )
        self._closed = threading.Event()
        self._is_copy = False

    def __repr__(self) -> str:
        return (
            f"CriObserver({self.endpoint!r}, namespace={self.namespace!r}, "
            f"label_selector={self.label_selector!r})"
        )

    @property
    def client(self) -> CriRuntime:
        return self._source.client

    def connect(self) -> None:
        """Connect to the runtime; raises :class:`CriError` with a clear message."""
        self._source.connect()

    def _selected(self, values: Iterable[Container]) -> list[Container]:
        return [c for c in values if all(f.matches(c) for f in self._filters)]

    def containers(self) -> list[Container]:
        """Running containers that match this observer (fresh from the runtime)."""
        return self._selected(self._source.snapshot(max_age=0.0))

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> CriObserver:
        """An observer further restricted (AND) by these constraints, sharing the client."""
        other = object.__new__(CriObserver)
        other.endpoint = self.endpoint
        other.alt_root = self.alt_root
        other.namespace = namespace if namespace is not None else self.namespace
        other.label_selector = label_selector if label_selector is not None else self.label_selector
        other.field_selector = field_selector if field_selector is not None else self.field_selector
        other.poll_interval = self.poll_interval
        other._source = self._source
        other._filters = (
            *self._filters,
            _Filter(
                namespace,
                _matcher(label_selector, "label_selector"),
                _matcher(field_selector, "field_selector"),
            ),
        )
        other._closed = threading.Event()
        other._is_copy = True
        return other

    def close(self) -> None:
        """Stop ``run``. Closing the original observer also stops its copies and
        closes the client it created (a client passed in is left to the caller)."""
        self._closed.set()
        if not self._is_copy:
            self._source.close()

    # ------------------------------------------------------------------ run loop

    def _done(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set() or self._source.closed.is_set()

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._done(stop):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 0.1))

    @staticmethod
    def _emit(emit: EmitFn, kind: ContainerEventKind, c: Container) -> None:
        try:
            emit(ContainerEvent(kind, c))
        except Exception:
            log.exception("CRI observer: emit(%s %s) raised; continuing", kind.value, c.id[:13])

    def run(self, emit: EmitFn, stop: threading.Event) -> None:
        """Emit START for current containers, then follow changes until ``stop``.

        Errors talking to the runtime are logged and retried with exponential
        backoff (up to 10 s); they never propagate.
        """
        known: dict[str, Container] = {}
        failures = 0
        while not self._done(stop):
            try:
                current = {
                    c.id: c
                    for c in self._selected(self._source.snapshot(max_age=self.poll_interval / 2))
                }
            except Exception as exc:
                failures += 1
                delay = min(self._MAX_BACKOFF, self.poll_interval * 2 ** min(failures, 8))
                if isinstance(exc, CriError | OSError):
                    log.warning("CRI observer: %s (retry %d in %.1fs)", exc, failures, delay)
                else:
                    log.exception("CRI observer: unexpected error (retry %d)", failures)
                self._sleep(stop, delay)
                continue
            if failures:
                log.info("CRI observer: %s reachable again", self.endpoint)
                failures = 0
            for cid in [k for k in known if k not in current]:
                self._emit(emit, ContainerEventKind.STOP, known.pop(cid))
            for cid, c in current.items():
                if cid not in known:
                    known[cid] = c
                    self._emit(emit, ContainerEventKind.START, c)
            self._sleep(stop, self.poll_interval)
