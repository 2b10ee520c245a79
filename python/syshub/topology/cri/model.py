"""Values the CRI client returns, its errors, and the runtime protocol observers use.

Pure Python (no gRPC): importable without the ``cri`` extra.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from syshub.errors import CriError
from syshub.topology.model import frozen_mapping


class CriCallError(CriError):
    """A CRI call reached the runtime and failed; ``code`` is the gRPC status name
    (``"NOT_FOUND"``, ``"UNAVAILABLE"``, ...) or ``""`` when there was none."""

    def __init__(self, message: str, *, code: str = "", method: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.method = method


_E = TypeVar("_E", bound=enum.IntEnum)


def _parse_enum(cls: type[_E], value: int, default: _E) -> _E:
    try:
        return cls(value)
    except ValueError:
        return default


class ContainerState(enum.IntEnum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3

    @classmethod
    def parse(cls, value: int) -> ContainerState:
        return _parse_enum(cls, value, cls.UNKNOWN)


class PodSandboxState(enum.IntEnum):
    READY = 0
    NOTREADY = 1

    @classmethod
    def parse(cls, value: int) -> PodSandboxState:
        return _parse_enum(cls, value, cls.NOTREADY)


class NamespaceMode(enum.IntEnum):
    """CRI ``NamespaceMode``: POD shares with the pod, CONTAINER is private, NODE is the host's."""

    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3

    @classmethod
    def parse(cls, value: int) -> NamespaceMode:
        return _parse_enum(cls, value, cls.POD)


def _freeze(obj: object, *names: str) -> None:
    for name in names:
        object.__setattr__(obj, name, frozen_mapping(getattr(obj, name)))


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
        _freeze(self, "labels", "annotations")


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
        _freeze(self, "labels", "annotations", "info")


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
        _freeze(self, "labels", "annotations")


@dataclass(frozen=True, slots=True)
class CriPodSandboxStatus:
    """PodSandboxStatus (verbose); ``pid`` is the sandbox init's host pid when reported."""

    sandbox: CriPodSandbox
    ip: str
    additional_ips: tuple[str, ...]
    network: NamespaceMode
    pid_mode: NamespaceMode
    ipc: NamespaceMode
    pid: int
    info: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze(self, "info")


@runtime_checkable
class CriRuntime(Protocol):
    """What :class:`~syshub.topology.cri.CriObserver` needs from a client (tests pass a fake)."""

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
