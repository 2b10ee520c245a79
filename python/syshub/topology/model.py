"""Observer contract and container values shared by every topology source.

An observer reports which containers exist and when they start and stop; the
:class:`~syshub.topology.Topology` caches them by kernel pid namespace so the hub
can label events. Pure Python; no privileges needed.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, Self, runtime_checkable


def frozen_mapping(m: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy of ``m`` (``None``: empty)."""
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Container:
    """One running container (or local process group) as the kernel sees it.

    ``pid`` is the host pid of the container's init process and ``pid_ns`` the
    inode of its pid namespace (the key events carry). Kubernetes fields are
    empty for containers that do not belong to a pod.
    """

    id: str
    name: str
    pid: int
    pid_ns: int
    pod: str = ""
    namespace: str = ""
    pod_uid: str = ""
    sandbox_id: str = ""
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    node: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_mapping(self.labels))
        object.__setattr__(self, "pod_labels", frozen_mapping(self.pod_labels))

    @property
    def host(self) -> str:
        """``container.pod`` as used by ``Job.monitored_hosts``."""
        return f"{self.name}.{self.pod}"

    def to_dict(self) -> dict[str, object]:
        """The ``container`` object of an event's JSON (empty fields omitted)."""
        out: dict[str, object] = {
            "id": self.id,
            "pod": self.pod,
            "sandbox-id": self.sandbox_id,
            "name": self.name,
            "image": self.image,
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "pid": self.pid,
            "pid-namespace": self.pid_ns,
        }
        return {k: v for k, v in out.items() if v not in ("", {}, 0)}


class ContainerEventKind(enum.Enum):
    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    kind: ContainerEventKind
    container: Container


EmitFn = Callable[[ContainerEvent], None]
#: Called once by ``Observer.run`` when the START events of its initial state are out.
SyncedFn = Callable[[], None]


@runtime_checkable
class Observer(Protocol):
    """Source of container start/stop events.

    ``connect`` fails fast with a clear error (missing socket, unreadable
    kubeconfig). ``run`` first emits START for every current container, then
    calls ``on_synced()`` (when given) exactly once, then follows changes until
    ``stop`` is set or ``close`` is called; it must not raise on transient
    errors (it retries with backoff, and ``on_synced`` waits for the first
    success). ``copy`` returns an observer further restricted (AND) to a
    namespace and label/field selectors that shares the underlying source (one
    watch per hub, not per job).
    """

    def connect(self) -> None: ...

    def containers(self) -> list[Container]: ...

    def run(
        self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None
    ) -> None: ...

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> Observer: ...

    def close(self) -> None: ...


class Closing:
    """``with obj:`` calls ``connect()`` on entry and ``close()`` on exit."""

    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
