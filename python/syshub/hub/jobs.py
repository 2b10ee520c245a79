"""Trace jobs: a :class:`Job` follows its observer and asks the hub for one
:class:`JobContext` per (pid namespace, syscall) of each matching container.
Containers sharing a pid namespace are reference-counted per job, so the
stop of one does not release what the others need."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syshub import syscalls
from syshub.topology.base import Container, ContainerEvent, ContainerEventKind
from syshub.spec.trace import Trace, TraceState, TraceStatus, new_job_id

if TYPE_CHECKING:
    from syshub.hub.service import Hub


@dataclass(eq=False)
class JobContext:
    """One job's interest in one kernel key (pid namespace, syscall nr)."""

    job: Job
    pid_ns: int
    nr: int
    base_seq: int = 0
    """Kernel sequence of the key when this context started: later calls are the job's."""
    end_seq: int | None = None
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

    def accounting(self, kernel_matched: int) -> dict[str, int]:
        """Exact per-key accounting of this job: matched = delivered + dropped + sampled_out.

        ``matched`` counts the key's calls since the context started; the job
        wants those whose sequence is a multiple of its rate; the ones it did
        not receive were dropped in the kernel (or are still in flight)."""
        end = kernel_matched if self.end_seq is None else self.end_seq
        r = self.rate
        matched = max(0, end - self.base_seq)
        wanted = end // r - self.base_seq // r
        return {
            "pid_ns": self.pid_ns,
            "nr": self.nr,
            "matched": matched,
            "delivered": self.delivered,
            "dropped": max(0, wanted - self.delivered),
            "sampled_out": matched - wanted,
        }


class JobList:
    """The contexts of one (pid namespace, syscall) key, in push order."""

    def __init__(self, contexts: Iterator[JobContext] | None = None) -> None:
        self._items: list[JobContext] = list(contexts or [])

    def push(self, ctx: JobContext) -> None:
        self._items.append(ctx)

    def remove(self, ctx: JobContext) -> None:
        self._items.remove(ctx)

    def __iter__(self) -> Iterator[JobContext]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def lowest_rate(self) -> JobContext | None:
        return min(self._items, key=lambda c: c.rate, default=None)


@dataclass(eq=False)
class Job:
    """A running Trace: selects containers, owns contexts, carries status."""

    trace: Trace
    job_id: str = ""
    _hosts: dict[str, bool] = field(default_factory=dict, repr=False)
    _ns_members: dict[int, set[str]] = field(default_factory=dict, repr=False)
    _ns_fds: dict[int, int] = field(default_factory=dict, repr=False)
    """Open pid namespaces this job traces: held so their inodes are not reused."""
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    nrs: tuple[int, ...] = ()

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
    def duration(self) -> float:
        """Spec duration in seconds, -1 when unbounded."""
        d = self.trace.spec.duration
        return -1.0 if d is None else float(d)

    @property
    def sample_rate(self) -> int:
        return max(1, int(self.trace.spec.sample_rate or 1))

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def add_container(self, pod: str, name: str) -> None:
        self._hosts[f"{name}.{pod}"] = True

    def remove_container(self, pod: str, name: str) -> None:
        key = f"{name}.{pod}"
        if key in self._hosts:
            self._hosts[key] = False

    def monitored_hosts(self, all: bool = False) -> list[str]:
        """``container.pod`` names this job has seen; only active ones unless ``all``."""
        return sorted(h for h, active in self._hosts.items() if all or active)

    def selects(self, c: Container) -> bool:
        hosts = self.trace.spec.host_selector
        return not hosts or c.name in hosts

    # driven by the hub ---------------------------------------------------
    def on_container(self, hub: Hub, ev: ContainerEvent) -> None:
        """Apply one observer event (called by the observer thread)."""
        c = ev.container
        if not self.selects(c):
            return
        hub._job_container_event(self, ev.kind is ContainerEventKind.START, c)

    def run(self, hub: Hub) -> None:
        """Follow the job's observer until the job is stopped (blocking)."""
        spec = self.trace.spec
        label = None if spec.label_selector.is_empty() else spec.label_selector
        fields = None if spec.field_selector.is_empty() else spec.field_selector
        observer = hub.observer.copy(
            namespace=self.trace.namespace or None, label_selector=label, field_selector=fields
        )
        try:
            observer.run(lambda ev: self.on_container(hub, ev), self._stopped)
        finally:
            self._done.set()

    def start(self, hub: Hub) -> None:
        self.trace.mark_running(self.job_id)
        self._thread = threading.Thread(
            target=self.run, args=(hub,), name=f"syshub-job-{self.job_id}", daemon=True
        )
        self._thread.start()
        if self.duration > 0:
            timer = threading.Timer(self.duration, hub.delete_trace, args=(self.trace,))
            timer.daemon = True
            timer.start()

    def stop(self) -> None:
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job completes; True if it did."""
        return self._done.wait(timeout) and self.trace.status.state in (
            TraceState.COMPLETE,
            TraceState.FAILED,
        )
