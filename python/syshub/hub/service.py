"""The Hub: one kernel probe, many trace jobs, exact kernel filters, routing.

Invariant: the kernel filter set always equals the union of the (pid
namespace, syscall) keys of live job contexts; each key is sampled in the
kernel at the gcd of its jobs' rates and every job with rate r receives
exactly the calls whose per-key sequence number is a multiple of r.

Threads: a reader loop polls the probe and routes events into subscriber
queues (never running subscriber code, never blocking); one thread per job
follows its observer; one worker per callback subscriber calls it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from syshub import syscalls
from syshub.errors import HubError
from syshub.hub.jobs import Job, JobContext, JobList
from syshub.hub.subscriptions import CallbackWorker, Overflow, Subscription
from syshub.topology import HostObserver, Observer, Topology
from syshub.topology.base import Container, ContainerEvent, ContainerEventKind
from syshub.spec.trace import Trace, TraceState


@dataclass(frozen=True)
class HubConfig:
    """Where the hub finds its topology, and probe settings.

    With ``k8s_endpoint`` (kubeconfig path or URL) or inside a cluster, pods
    come from Kubernetes and containers from the CRI at ``cri_endpoint``;
    with only ``cri_endpoint``, containers come from the CRI; otherwise local
    pid namespaces are the containers (:class:`HostObserver`)."""

    alt_root: str = "/"
    cri_endpoint: str | None = None
    k8s_endpoint: str | None = None
    k8s_namespace: str | None = None
    bpf_object: str | None = None
    ring_bytes: int = 16 << 20
    poll_ms: int = 10
    node_name: str | None = None


class KernelFilters(Protocol):
    """What the hub needs from the kernel: apply a filter diff, read back."""

    def set(self, pid_ns: int, nr: int, sample_rate: int) -> None: ...

    def remove(self, pid_ns: int, nr: int) -> None: ...

    def current(self) -> dict[tuple[int, int], int]: ...

    def matched(self) -> dict[tuple[int, int], int]: ...


class ProbeFilters:
    """:class:`KernelFilters` on the real probe."""

    def __init__(self, probe: Any) -> None:
        self.probe = probe

    def set(self, pid_ns: int, nr: int, sample_rate: int) -> None:
        self.probe.add_filter(pid_ns, nr, sample_rate)

    def remove(self, pid_ns: int, nr: int) -> None:
        self.probe.remove_filter(pid_ns, nr)

    def current(self) -> dict[tuple[int, int], int]:
        return {(f["pid_ns"], f["nr"]): f["sample_rate"] for f in self.probe.filters()}

    def matched(self) -> dict[tuple[int, int], int]:
        """Live keys' kernel sequences (what records are stamped with)."""
        return dict(self.probe.sequences())


class FakeFilters:
    """In-memory :class:`KernelFilters` for tests without privileges."""

    def __init__(self) -> None:
        self.filters: dict[tuple[int, int], int] = {}
        self.counts: dict[tuple[int, int], int] = {}
        self.ops = 0

    def set(self, pid_ns: int, nr: int, sample_rate: int) -> None:
        self.filters[(pid_ns, nr)] = sample_rate
        self.ops += 1

    def remove(self, pid_ns: int, nr: int) -> None:
        self.filters.pop((pid_ns, nr), None)
        self.ops += 1

    def current(self) -> dict[tuple[int, int], int]:
        return dict(self.filters)

    def matched(self) -> dict[tuple[int, int], int]:
        return dict(self.counts)


class TraceEvent(tuple[Any, "Container | None"]):
    """An event as subscribers see it: the kernel event plus its container.
    Immutable (a tuple underneath: cheap to build on the reader path); every
    subscriber of an event gets the same object. Other attributes come from
    the kernel event (``syscall``, ``pid_ns``, ``args``, ...)."""

    __slots__ = ()

    def __new__(cls, event: Any, container: Container | None) -> TraceEvent:
        return tuple.__new__(cls, (event, container))

    @property
    def event(self) -> Any:
        return self[0]

    @property
    def container(self) -> Container | None:
        return self[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self[0], name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TraceEvent is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TraceEvent is immutable")

    @property
    def path(self) -> tuple[str, str, str, str]:
        """(namespace, pod, container, syscall) for path subscriptions."""
        c = self[1]
        name = self[0].syscall
        if c is None:
            return ("", "", "", name)
        return (c.namespace, c.pod, c.name, name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = self[0].to_dict()
        if self[1] is not None:
            d["container"] = self[1].to_dict()
        return d

    def __repr__(self) -> str:
        return f"<TraceEvent {self[0].to_text()} container={self[1]}>"


def _hold_namespace(alt_root: str, c: Container) -> int | None:
    """Open the container's pid namespace while its filters exist: the kernel
    reuses a dead namespace's inode at once, and a filter on a reused inode
    would trace someone else. None when the process is gone or not ours to see
    (then the filter is still installed, as the observer asked)."""
    try:
        fd = os.open(
            os.path.join(alt_root, "proc", str(c.pid), "ns", "pid"), os.O_RDONLY | os.O_CLOEXEC
        )
    except OSError:
        return None
    if os.fstat(fd).st_ino != c.pid_ns:
        os.close(fd)
        return None
    return fd


def _release_namespace(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _default_observer(config: HubConfig) -> Observer:
    if config.k8s_endpoint or os.environ.get("KUBERNETES_SERVICE_HOST"):
        from syshub.topology.kubernetes import KubernetesObserver

        return KubernetesObserver(
            config.k8s_endpoint,
            config.k8s_namespace,
            cri_endpoint=config.cri_endpoint,
            node_name=config.node_name,
            alt_root=config.alt_root,
        )
    if config.cri_endpoint:
        from syshub.topology.cri import CriObserver

        return CriObserver(config.cri_endpoint, alt_root=config.alt_root)
    return HostObserver(alt_root=config.alt_root)


class Hub:
    """Owns the probe; runs jobs; keeps kernel filters exact; routes events."""

    def __init__(
        self,
        config: HubConfig | None = None,
        observer: Observer | None = None,
        *,
        probe: Any | None = None,
        filters: KernelFilters | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.observer: Observer = (
            observer if observer is not None else _default_observer(self.config)
        )
        self._probe = probe
        self._own_probe = False
        self._filters: KernelFilters | None = filters
        self._lock = threading.RLock()
        self._nsmap: dict[tuple[int, int], JobList] = {}
        self._routes: dict[tuple[int, int], tuple[JobContext, ...]] = {}
        self._applied: dict[tuple[int, int], int] = {}
        self._jobs: dict[str, Job] = {}
        self._contexts: dict[str, dict[tuple[int, int], JobContext]] = {}
        self._retired: dict[str, list[dict[str, int]]] = {}
        self._job_subs: dict[str, tuple[Subscription, ...]] = {}
        self._path_subs: dict[tuple[str, ...], tuple[Subscription, ...]] = {}
        self._workers: list[CallbackWorker] = []
        self.topology = Topology()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.unrouted = 0
        self.routed = 0
        self._started = False

    # lifecycle -----------------------------------------------------------
    @property
    def probe(self) -> Any:
        return self._probe

    def start(self) -> Hub:
        """Load the probe (unless given), start the reader and topology threads."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        if self._filters is None:
            if self._probe is None:
                from syshub import _native

                self._probe = _native.Probe(self.config.ring_bytes, poll_ms=self.config.poll_ms)
                self._own_probe = True
            self._filters = ProbeFilters(self._probe)
        self.observer.connect()
        self._spawn(self._topology_loop, "syshub-topology")
        if self._probe is not None:
            self._spawn(self._reader_loop, "syshub-reader-loop")
        return self

    def run(self) -> None:
        """Start and block until :meth:`stop` (swoll's ``Run``)."""
        self.start()
        self._stop.wait()

    def stop(self) -> None:
        """Stop every job, release every filter, stop threads, close the probe."""
        for job in list(self._jobs.values()):
            if not job.stopped:
                self.delete_trace(job.trace)
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        with self._lock:
            subs = [s for group in self._job_subs.values() for s in group]
            subs += [s for group in self._path_subs.values() for s in group]
        for s in subs:
            s.close()
        self.observer.close()
        if self._own_probe and self._probe is not None:
            self._probe.close()

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _topology_loop(self) -> None:
        self.observer.run(self.topology.apply, self._stop)

    # jobs ----------------------------------------------------------------
    def run_trace(self, trace: Trace) -> Job:
        """Start a job for ``trace`` (non-blocking); returns it."""
        return self.run_job(Job(trace))

    def run_job(self, job: Job) -> Job:
        """Start ``job`` (non-blocking). Raises :class:`HubError` if its id is taken."""
        if not self._started:
            self.start()
        with self._lock:
            prev = self._jobs.get(job.job_id)
            if prev is not None and not prev.stopped:
                raise HubError(f"job `{job.job_id}` is already running")
            # A completed trace may run again: its new job replaces the old one.
            self._retired.pop(job.job_id, None)
            self._jobs[job.job_id] = job
            self._contexts[job.job_id] = {}
        job.start(self)
        return job

    def must_run_job(self, job: Job) -> Job:
        """Like :meth:`run_job`, but any failure is raised as :class:`HubError`."""
        try:
            return self.run_job(job)
        except HubError:
            raise
        except Exception as e:
            raise HubError(f"job `{job.job_id}` failed to start: {e}") from e

    def job(self, job_id: str) -> Job:
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise HubError(f"job not found: `{job_id}`") from None

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def delete_trace(self, trace: Trace) -> None:
        """Stop the trace's job, release its contexts, mark it Complete."""
        job_id = trace.status.job_id
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise HubError(f"job not found: `{job_id}`")
            if job.stopped:
                return
            # Under the lock: no container event of this job can push after this.
            job.stop()
            for ctx in list(self._contexts.get(job_id, {}).values()):
                self._release(ctx)
            self._contexts[job_id] = {}
            for fd in job._ns_fds.values():
                _release_namespace(fd)
            job._ns_fds.clear()
            subs = self._job_subs.get(job_id, ())
        trace.update_status(state=TraceState.COMPLETE, completion_time=datetime.now(UTC))
        # The trace is over: its subscriptions end (queued events stay readable).
        for sub in subs:
            sub.close()

    def push_job(self, job: Job, pid_ns: int, nr: int) -> JobContext:
        """Add ``job``'s interest in (pid_ns, nr); idempotent per job and key."""
        with self._lock:
            ctxs = self._contexts.setdefault(job.job_id, {})
            existing = ctxs.get((pid_ns, nr))
            if existing is not None:
                return existing
            if job.stopped:
                raise HubError(f"job `{job.job_id}` is stopped")
            base = self._kernel_matched().get((pid_ns, nr), 0)
            ctx = JobContext(job, pid_ns, nr, base_seq=base)
            self._nsmap.setdefault((pid_ns, nr), JobList()).push(ctx)
            ctxs[(pid_ns, nr)] = ctx
            self._sync_key((pid_ns, nr))
            return ctx

    def _release(self, ctx: JobContext) -> None:
        with self._lock:
            key = ctx.key
            bucket = self._nsmap.get(key)
            if bucket is None or ctx not in list(bucket):
                return
            ctx.end_seq = self._kernel_matched().get(key, ctx.base_seq)
            bucket.remove(ctx)
            if not len(bucket):
                del self._nsmap[key]
            self._contexts.get(ctx.job.job_id, {}).pop(key, None)
            self._retired.setdefault(ctx.job.job_id, []).append(ctx.accounting(ctx.end_seq))
            self._sync_key(key)

    def _job_container_event(self, job: Job, started: bool, c: Container) -> None:
        with self._lock:
            if job.stopped:
                return
            members = job._ns_members.setdefault(c.pid_ns, set())
            if started:
                self.topology.apply(ContainerEvent(ContainerEventKind.START, c))
                job.add_container(c.pod, c.name)
                first = not members
                members.add(c.id)
                if first:
                    fd = _hold_namespace(self.config.alt_root, c)
                    if fd is not None:
                        job._ns_fds[c.pid_ns] = fd
                    for nr in job.nrs:
                        self.push_job(job, c.pid_ns, nr)
            else:
                job.remove_container(c.pod, c.name)
                members.discard(c.id)
                if not members:
                    job._ns_members.pop(c.pid_ns, None)
                    for nr in job.nrs:
                        ctx = self._contexts.get(job.job_id, {}).get((c.pid_ns, nr))
                        if ctx is not None:
                            self._release(ctx)
                    _release_namespace(job._ns_fds.pop(c.pid_ns, None))

    def _sync_key(self, key: tuple[int, int]) -> None:
        """Apply the desired kernel state of one key (call under the lock)."""
        assert self._filters is not None, "hub not started"
        bucket = self._nsmap.get(key)
        if bucket:
            rate = 0
            for ctx in bucket:
                rate = math.gcd(rate, ctx.rate)
            if self._applied.get(key) != rate:
                self._filters.set(key[0], key[1], rate)
                self._applied[key] = rate
            self._routes = {**self._routes, key: tuple(bucket)}
        else:
            if key in self._applied:
                self._filters.remove(key[0], key[1])
                del self._applied[key]
            if key in self._routes:
                routes = dict(self._routes)
                del routes[key]
                self._routes = routes

    def _kernel_matched(self) -> dict[tuple[int, int], int]:
        return self._filters.matched() if self._filters is not None else {}

    def desired_filters(self) -> dict[tuple[int, int], int]:
        """The filter set live contexts require: key -> gcd of their rates."""
        with self._lock:
            out: dict[tuple[int, int], int] = {}
            for key, bucket in self._nsmap.items():
                rate = 0
                for ctx in bucket:
                    rate = math.gcd(rate, ctx.rate)
                out[key] = rate
            return out

    # events --------------------------------------------------------------
    def _reader_loop(self) -> None:
        probe = self._probe
        assert probe is not None
        while not self._stop.is_set():
            try:
                batch = probe.poll(timeout_ms=100)
            except Exception:
                if self._stop.is_set():
                    return
                raise
            if batch:
                self.route(batch)

    def route(self, events: Iterable[Any]) -> None:
        """Route kernel events to job and path subscribers (reader thread).

        Per run of events with the same key, the contexts, their subscriber
        lists and the path subscribers are resolved once; events are then
        gathered per subscriber and enqueued once per batch (one lock and one
        wake-up per subscriber, not per event)."""
        routes = self._routes
        job_subs = self._job_subs
        path_subs = self._path_subs
        lookup = self.topology.lookup_container
        out: dict[int, tuple[Subscription, list[TraceEvent]]] = {}

        def target(sub: Subscription) -> list[TraceEvent]:
            slot = out.get(id(sub))
            if slot is None:
                slot = out[id(sub)] = (sub, [])
            return slot[1]

        column = getattr(events, "column", None)
        if column is not None:
            # A native batch: read the routing fields as columns, not per event.
            keys: Iterable[tuple[int, int, int, Any]] = zip(
                memoryview(column("pid_ns")).tolist(),
                memoryview(column("nr")).tolist(),
                memoryview(column("seq")).tolist(),
                events,
                strict=True,
            )
        else:
            keys = ((ev.pid_ns, ev.nr, ev.seq, ev) for ev in events)
        new_event = tuple.__new__
        unrouted = routed = 0
        counted: list[list[Any]] = []
        last_ns = last_nr = -1
        # plan: per context [ctx, base_seq, rate, [target lists], delivered]
        plan: list[list[Any]] = []
        paths: list[list[TraceEvent]] = []
        cont: Container | None = None
        for pid_ns, nr, seq, ev in keys:
            if pid_ns != last_ns or nr != last_nr:
                last_ns, last_nr = pid_ns, nr
                plan = [
                    [c, c.base_seq, c.rate, [target(s) for s in job_subs.get(c.job_id, ())], 0]
                    for c in routes.get((pid_ns, nr), ())
                ]
                cont = lookup(pid_ns) if plan else None
                paths = []
                if plan and path_subs:
                    name = ev.syscall
                    full = (
                        (cont.namespace, cont.pod, cont.name, name) if cont else ("", "", "", name)
                    )
                    paths = [target(s) for d in range(5) for s in path_subs.get(full[:d], ())]
                counted.extend(plan)
            if not plan:
                unrouted += 1
                continue
            tev: TraceEvent | None = None
            for entry in plan:
                if seq <= entry[1] or seq % entry[2]:
                    continue
                entry[4] += 1
                if tev is None:
                    tev = new_event(TraceEvent, (ev, cont))
                for lst in entry[3]:
                    lst.append(tev)
            if tev is None:
                continue
            routed += 1
            for lst in paths:
                lst.append(tev)
        for entry in counted:
            entry[0].delivered += entry[4]
        self.unrouted += unrouted
        self.routed += routed
        for sub, items in out.values():
            if items:
                sub.put_many(items)

    def _publish_path(
        self, tev: TraceEvent, path_subs: dict[tuple[str, ...], tuple[Subscription, ...]]
    ) -> None:
        path = tev.path
        for depth in range(5):
            for sub in path_subs.get(path[:depth], ()):
                sub.put(tev)

    def write_event(self, ev: TraceEvent) -> None:
        """Publish an event on its path streams (swoll's ``WriteEvent``)."""
        self._publish_path(ev, self._path_subs)

    # subscriptions -------------------------------------------------------
    def _add_sub(self, table: str, key: Any, sub: Subscription) -> None:
        with self._lock:
            t: dict[Any, tuple[Subscription, ...]] = getattr(self, table)
            new = dict(t)
            new[key] = (*new.get(key, ()), sub)
            setattr(self, table, new)

    def _remove_sub(self, table: str, key: Any, sub: Subscription) -> None:
        with self._lock:
            t: dict[Any, tuple[Subscription, ...]] = getattr(self, table)
            new = dict(t)
            rest = tuple(s for s in new.get(key, ()) if s is not sub)
            if rest:
                new[key] = rest
            else:
                new.pop(key, None)
            setattr(self, table, new)

    def subscribe(
        self,
        target: Trace | Job | str,
        *,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> Subscription:
        """A queue of the events of a trace / job (by object or job id)."""
        job_id = self._job_id(target)
        sub = Subscription(
            job_id,
            maxsize,
            overflow,
            on_close=lambda s: self._remove_sub("_job_subs", job_id, s),
        )
        self._add_sub("_job_subs", job_id, sub)
        return sub

    def subscribe_path(
        self,
        path: Iterable[str] = (),
        *,
        name: str = "",
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> Subscription:
        """Events below a (namespace, pod, container, syscall) prefix; an empty
        element ends the prefix (a wildcard for the rest)."""
        parts: list[str] = []
        for p in path:
            if not p:
                break
            parts.append(syscalls.canonical_name(p) if len(parts) == 3 else p)
        if len(parts) > 4:
            raise HubError("a path has at most 4 parts: namespace, pod, container, syscall")
        key = tuple(parts)
        sub = Subscription(
            name or "/".join(key),
            maxsize,
            overflow,
            on_close=lambda s: self._remove_sub("_path_subs", key, s),
        )
        self._add_sub("_path_subs", key, sub)
        return sub

    def attach_trace(
        self, trace: Trace | Job | str, cb: Callable[[str, TraceEvent], None], **kw: Any
    ) -> Callable[[], None]:
        """Call ``cb(job_id, event)`` for each event of the trace; returns an unsubscriber."""
        sub = self.subscribe(trace, **kw)
        self._workers.append(CallbackWorker(sub, cb, with_key=True))
        return sub.close

    def attach_path(
        self,
        name: str,
        path: Iterable[str],
        cb: Callable[[str, TraceEvent], None],
        **kw: Any,
    ) -> Callable[[], None]:
        """Call ``cb(name, event)`` for events below ``path``; returns an unsubscriber."""
        sub = self.subscribe_path(path, name=name, **kw)
        self._workers.append(CallbackWorker(sub, cb, with_key=True))
        return sub.close

    def _job_id(self, target: Trace | Job | str) -> str:
        if isinstance(target, Job):
            return target.job_id
        if isinstance(target, Trace):
            if not target.status.job_id:
                raise HubError(f"trace `{target.name}` has no job yet: run it first")
            return target.status.job_id
        return target

    # accounting ----------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per key (kernel) and per job (per key, per subscriber) counters.
        Per key: matched = delivered + dropped + sampled_out; per job likewise."""
        probe_stats: dict[str, Any] = self._probe.stats() if self._probe is not None else {}
        # Contexts count from the kernel's live per-key sequence.
        matched = self._kernel_matched()
        jobs: dict[str, Any] = {}
        with self._lock:
            for job_id, job in self._jobs.items():
                keys = [
                    c.accounting(matched.get(c.key, c.base_seq))
                    for c in self._contexts[job_id].values()
                ]
                keys += self._retired.get(job_id, [])
                subs = [s.stats() for s in self._job_subs.get(job_id, ())]
                total = {
                    f: sum(k[f] for k in keys)
                    for f in ("matched", "delivered", "dropped", "sampled_out")
                }
                jobs[job_id] = {
                    "state": job.trace.status.state.value,
                    "keys": keys,
                    "total": total,
                    "subscribers": subs,
                }
        return {
            "keys": probe_stats.get("keys", []),
            "kernel": probe_stats.get("kernel", {}),
            "reader": probe_stats.get("reader", {}),
            "jobs": jobs,
            "routed": self.routed,
            "unrouted": self.unrouted,
        }
