"""Trace jobs as data: what a running Trace targets, which containers it
selects, and its (pid namespace, syscall) contexts. Nothing here calls the
Hub: the Hub's service drives jobs and keeps the kernel in step.

Containers sharing a pid namespace are reference-counted per job, so the
stop of one does not release what the others need."""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from syshub import syscalls
from syshub.hub.events import TraceEvent
from syshub.hub.plan import CaptureSizes
from syshub.spec.trace import Trace, TraceState, TraceStatus, new_job_id
from syshub.topology import Container


class TargetKind(enum.Enum):
    CONTAINERS = "containers"
    EVERY_NAMESPACE = "every-namespace"
    PID_NAMESPACE = "pid-namespace"
    NAMESPACE_OF = "namespace-of"
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Target:
    """What a job traces. The default follows the hub's observer: every
    container matching the Trace's selectors. The others are fixed kernel
    keys, used by ``syshub trace``: every process of the host, one pid
    namespace (by inode, or the one of a process, held open by the hub), or
    one process and its descendants (a kernel process scope)."""

    kind: TargetKind = TargetKind.CONTAINERS
    value: int = 0

    @staticmethod
    def containers() -> Target:
        return Target()

    @staticmethod
    def every_namespace() -> Target:
        return Target(TargetKind.EVERY_NAMESPACE)

    @staticmethod
    def pid_namespace(inode: int) -> Target:
        return Target(TargetKind.PID_NAMESPACE, inode)

    @staticmethod
    def namespace_of(pid: int) -> Target:
        return Target(TargetKind.NAMESPACE_OF, pid)

    @staticmethod
    def process(pid: int) -> Target:
        return Target(TargetKind.PROCESS, pid)

    @property
    def follows_observer(self) -> bool:
        return self.kind is TargetKind.CONTAINERS

    def __str__(self) -> str:
        if self.kind in (TargetKind.CONTAINERS, TargetKind.EVERY_NAMESPACE):
            return str(self.kind.value)
        return f"{self.kind.value}:{self.value}"


class EventStreams(Protocol):
    """Where :meth:`Job.write_event` publishes (the :class:`~syshub.hub.service.Hub`)."""

    def write_event(self, ev: TraceEvent) -> None:
        """Publish on the event's (namespace, pod, container, syscall) path streams."""

    def write_job_event(self, job: Job | str, ev: TraceEvent) -> None:
        """Publish on one job's stream (its subscribers)."""


@dataclass(eq=False)
class JobContext:
    """One job's interest in one kernel key (pid namespace or scope, syscall nr)."""

    job: Job
    pid_ns: int
    nr: int
    base_seq: int = 0
    """Kernel sequence of the key when this context started: later calls are the job's."""
    end_seq: int | None = None
    """Kernel sequence of the key when the context was released (None while live)."""
    delivered: int = 0
    rate: int = 1
    """The job's sample rate (fixed for the job's life; read per event)."""
    job_id: str = ""

    def __post_init__(self) -> None:
        self.rate = self.job.sample_rate
        self.job_id = self.job.job_id

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid_ns, self.nr)

    @property
    def capture(self) -> CaptureSizes | None:
        return self.job.capture

    def accounting(self, kernel_matched: int) -> tuple[int, int, int, int]:
        """Exact (matched, delivered, dropped, sampled_out) of this job on this key.

        ``matched`` counts the key's calls since the context started; the job
        wants those whose sequence is a multiple of its rate; the ones it did
        not receive were dropped in the kernel (or are still in flight)."""
        end = kernel_matched if self.end_seq is None else self.end_seq
        r = self.rate
        matched = max(0, end - self.base_seq)
        wanted = max(0, end // r - self.base_seq // r)
        return (matched, self.delivered, max(0, wanted - self.delivered), matched - wanted)


class JobList:
    """The contexts of one (pid namespace, syscall) key, in push order."""

    def __init__(self, contexts: Iterable[JobContext] | None = None) -> None:
        self._items: list[JobContext] = list(contexts or [])

    def push(self, ctx: JobContext) -> None:
        self._items.append(ctx)

    def remove(self, ctx: JobContext) -> None:
        self._items.remove(ctx)

    def __contains__(self, ctx: object) -> bool:
        return any(c is ctx for c in self._items)

    def __iter__(self) -> Iterator[JobContext]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def lowest_rate(self) -> JobContext | None:
        return min(self._items, key=lambda c: c.rate, default=None)


@dataclass(eq=False)
class Job:
    """A running Trace: its target and capture sizes, the containers it
    selected (reference-counted per pid namespace), its status."""

    trace: Trace
    job_id: str = ""
    target: Target = field(default_factory=Target)
    capture: CaptureSizes | None = None
    """Capture sizes (:class:`syshub.spec.limits.Capture`); None: the defaults."""
    nrs: tuple[int, ...] = ()
    error: str | None = None
    """Why the job failed to start, or its last container that could not be traced."""
    errors: int = 0
    """Containers the job selected but could not trace (the kernel refused a filter)."""
    _hosts: dict[str, bool] = field(default_factory=dict, repr=False)
    _ns_members: dict[int, set[str]] = field(default_factory=dict, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _applied: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if not self.job_id:
            self.job_id = self.trace.status.job_id or new_job_id(self.trace)
        self.nrs = tuple(syscalls.lookup(s).nr for s in self.trace.spec.syscalls)

    # swoll-compatible accessors -----------------------------------------
    @property
    def trace_spec(self) -> Any:
        return self.trace.spec

    @property
    def trace_status(self) -> TraceStatus:
        return self.trace.status

    @property
    def duration(self) -> timedelta:
        """The spec's duration; zero when it has none (no limit), as swoll's ``Duration()``."""
        d = self.trace.spec.duration
        return timedelta(0) if d is None else timedelta(seconds=d)

    @property
    def sample_rate(self) -> int:
        return max(1, int(self.trace.spec.sample_rate or 1))

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def write_event(self, hub: EventStreams, ev: TraceEvent) -> None:
        """Publish ``ev`` as ``hub`` publishes an event it routed to this job: on the event's
        path streams (swoll's ``Hub.WriteEvent``) and on this job's stream (swoll's
        ``Job.WriteEvent``). The kernel already sampled routed events at the job's rate; an
        event written here is published as is. A job's stream takes events once the job
        runs (or was subscribed to before it ran)."""
        hub.write_event(ev)
        hub.write_job_event(self, ev)

    def add_container(self, pod: str, name: str) -> None:
        self._hosts[f"{name}.{pod}"] = True

    def remove_container(self, pod: str, name: str) -> None:
        key = f"{name}.{pod}"
        if key in self._hosts:
            self._hosts[key] = False

    def monitored_hosts(self, all: bool = False) -> list[str]:
        """``container.pod`` names this job has seen; only active ones unless ``all``."""
        return sorted(h for h, active in self._hosts.items() if all or active)

    # selection -------------------------------------------------------------
    def selects(self, c: Container) -> bool:
        """Whether an observer's container is this job's (the observer copy
        already applied the namespace, label and field selectors)."""
        hosts = self.trace.spec.host_selector
        return not hosts or c.name in hosts

    def container_started(self, c: Container) -> bool:
        """Record a selected container; True when it is the first of its pid
        namespace (then the namespace's contexts are needed)."""
        self.add_container(c.pod, c.name)
        members = self._ns_members.setdefault(c.pid_ns, set())
        first = not members
        members.add(c.id)
        return first

    def container_stopped(self, c: Container) -> bool:
        """Forget a container; True when it was the last of its pid namespace."""
        self.remove_container(c.pod, c.name)
        members = self._ns_members.get(c.pid_ns)
        if members is None:
            return False
        members.discard(c.id)
        if members:
            return False
        del self._ns_members[c.pid_ns]
        return True

    # lifecycle flags (set by the hub) -------------------------------------
    def mark_applied(self) -> None:
        self._applied.set()

    def wait_applied(self, timeout: float | None = None) -> bool:
        """True once the kernel filters of the job's initial targets are in."""
        return self._applied.wait(timeout)

    def stop(self) -> None:
        self._stopped.set()

    def mark_done(self) -> None:
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job completes; True if it did."""
        return self._done.wait(timeout) and self.trace.status.state in (
            TraceState.COMPLETE,
            TraceState.FAILED,
        )
