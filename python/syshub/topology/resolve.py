"""The one CRI-to-container resolver: a runtime's container -> :class:`Container`.

Also the values a CRI runtime reports (:class:`CriContainer`, :class:`CriContainerStatus`,
:class:`CriPodSandbox`), which :mod:`syshub.topology.cri.client` builds from the wire
and the observers hand to the :class:`Resolver`; pure Python, no gRPC.

The kernel keys events by pid namespace inode, the CRI knows container ids. A
container is resolved by asking the runtime for its status (the host pid of its init,
from the verbose ``info``) and reading ``/proc/<pid>/ns/pid`` under ``alt_root`` (where
the host's filesystem is mounted when syshub runs in a container). Used by the CRI
observer and by the Kubernetes observer; needs read access to ``/proc/<pid>/ns``.

The pod a container belongs to comes either from the Kubernetes API (the Kubernetes
observer) or from the labels the kubelet sets on CRI containers and sandboxes
(:meth:`PodRef.from_cri`).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Protocol

from syshub.errors import CriError
from syshub.topology.model import Container, frozen_mapping

log = logging.getLogger(__name__)

LABEL_POD_NAME: Final = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE: Final = "io.kubernetes.pod.namespace"
LABEL_POD_UID: Final = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME: Final = "io.kubernetes.container.name"


class ProcessGoneError(CriError, ProcessLookupError):
    """The process (a container init) no longer exists."""


def pid_namespace_inode(pid: int, alt_root: str = "/") -> int:
    """Inode of the pid namespace of host process ``pid`` (``/proc/<pid>/ns/pid``).

    Raises :class:`ProcessGoneError` (a ``ProcessLookupError``) when the process no
    longer exists and :class:`~syshub.errors.CriError` when it cannot be read.
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


PidNsReader = Callable[[int, str], int]


class CriCallError(CriError):
    """A CRI call reached the runtime and failed; ``code`` is the gRPC status name
    (``"NOT_FOUND"``, ``"UNAVAILABLE"``, ...) or ``""`` when there was none."""

    def __init__(self, message: str, *, code: str = "", method: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.method = method


class ContainerState(enum.IntEnum):
    """CRI ``ContainerState`` (``CONTAINER_RUNNING`` = 1, ...)."""

    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


class PodSandboxState(enum.IntEnum):
    """CRI ``PodSandboxState``."""

    READY = 0
    NOTREADY = 1


def _freeze(obj: object, *names: str) -> None:
    for name in names:
        object.__setattr__(obj, name, frozen_mapping(getattr(obj, name)))


@dataclasses.dataclass(frozen=True, slots=True)
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
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze(self, "labels")


@dataclasses.dataclass(frozen=True, slots=True)
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
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    info: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze(self, "labels", "info")


@dataclasses.dataclass(frozen=True, slots=True)
class CriPodSandbox:
    """One entry of ListPodSandbox."""

    id: str
    name: str
    uid: str
    namespace: str
    attempt: int
    state: PodSandboxState
    created_at: int
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    runtime_handler: str = ""

    def __post_init__(self) -> None:
        _freeze(self, "labels")


class CriReader(Protocol):
    """The runtime calls the resolver's users make (a CriClient; tests pass a fake)."""

    def connect(self) -> None: ...

    def list_containers(
        self, state_running_only: bool = True, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[CriContainer]: ...

    def container_status(self, container_id: str) -> CriContainerStatus: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class PodRef:
    """The pod a container belongs to (all empty for a container outside any pod)."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    node: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_mapping(self.labels))

    @staticmethod
    def from_cri(
        container_labels: Mapping[str, str], sandbox: CriPodSandbox | None, node: str = ""
    ) -> PodRef:
        """The pod from the kubelet's labels on the container, else on its sandbox, else
        from the sandbox's metadata."""
        pod_labels: Mapping[str, str] = sandbox.labels if sandbox is not None else {}

        def pick(label: str, fallback: str) -> str:
            return container_labels.get(label) or pod_labels.get(label) or fallback

        return PodRef(
            name=pick(LABEL_POD_NAME, sandbox.name if sandbox else ""),
            namespace=pick(LABEL_POD_NAMESPACE, sandbox.namespace if sandbox else ""),
            uid=pick(LABEL_POD_UID, sandbox.uid if sandbox else ""),
            labels=pod_labels,
            node=node,
        )


class Resolver:
    """CRI container + pod -> :class:`Container`, or ``None`` when it is not running.

    ``status`` is the runtime's ContainerStatus call (a client method). A container the
    runtime no longer knows (``NOT_FOUND``), that is not running, or whose process has
    exited resolves to ``None``; other runtime errors propagate (the caller retries).
    """

    def __init__(
        self,
        status: Callable[[str], CriContainerStatus],
        alt_root: str = "/",
        read_pid_ns: PidNsReader = pid_namespace_inode,
    ) -> None:
        self._status = status
        self.alt_root = alt_root
        self._read_pid_ns = read_pid_ns

    def pid_ns(self, pid: int) -> int:
        """Pid namespace inode of host process ``pid``; 0 when it is gone or unreadable."""
        if pid <= 0:
            return 0
        try:
            return int(self._read_pid_ns(pid, self.alt_root))
        except ProcessLookupError:
            return 0
        except Exception as exc:
            log.warning("cannot read the pid namespace of process %d: %s", pid, exc)
            return 0

    def alive(self, c: Container) -> bool:
        """Whether ``c``'s init still runs in the namespace it was resolved with."""
        return self.pid_ns(c.pid) == c.pid_ns

    def resolve(self, c: CriContainer, pod: PodRef) -> Container | None:
        try:
            status = self._status(c.id)
        except CriCallError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        if status.state != ContainerState.RUNNING:
            return None
        if status.pid <= 0:
            log.warning("CRI container %s: runtime reports no pid; not tracked", c.id[:13])
            return None
        pid_ns = self.pid_ns(status.pid)
        if pid_ns == 0:
            log.debug("CRI container %s: process %d is gone", c.id[:13], status.pid)
            return None
        labels = dict(c.labels) or dict(status.labels)
        return Container(
            id=c.id,
            name=c.name or labels.get(LABEL_CONTAINER_NAME, ""),
            pid=status.pid,
            pid_ns=pid_ns,
            pod=pod.name,
            namespace=pod.namespace,
            pod_uid=pod.uid,
            sandbox_id=c.pod_sandbox_id,
            image=status.image or c.image,
            labels=labels,
            pod_labels=pod.labels,
            node=pod.node,
        )
