"""The Hub: one kernel probe, many trace jobs, exact kernel filters, routing.

Invariant: the kernel filter set always equals the union of the keys of live
job contexts (:mod:`syshub.hub.plan`); each key is sampled in the kernel at
the gcd of its jobs' rates and every job with rate r receives exactly the
calls whose per-key sequence number is a multiple of r.

Threads: the reader loop (:mod:`syshub.hub.reader`) polls the probe and
routes events into subscriber queues (:mod:`syshub.hub.router`; never running
subscriber code, never blocking); the topology loop follows the hub's
observer; one thread per observer-driven job follows its selection; one worker
per callback subscriber calls it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from syshub import syscalls
from syshub.errors import HubError
from syshub.hub.batches import BatchSubscribing
from syshub.hub.config import HubConfig, default_observer
from syshub.hub.events import TraceEvent
from syshub.hub.jobs import Job, JobContext, JobList, Target, TargetKind
from syshub.hub.kernel import KernelFilters, NamespaceHold, ProbeFilters
from syshub.hub.plan import CaptureSizes, Key, KeyConfig, key_config, plan_key
from syshub.hub.reader import ReaderLoop
from syshub.hub.router import Router, path_key
from syshub.hub.stats import HubStats, JobKeyStats, JobStats
from syshub.hub.subscriptions import CallbackWorker, Overflow, Subscription
from syshub.probe import Probe, ProbeStats
from syshub.spec.trace import Trace, TraceState
from syshub.topology import ContainerEvent, ContainerEventKind, Observer, Topology

_log = logging.getLogger(__name__)


class Hub(BatchSubscribing):
    """Owns the probe; runs jobs; keeps kernel filters exact; routes events."""

    def __init__(
        self,
        config: HubConfig | None = None,
        observer: Observer | None = None,
        *,
        probe: Probe | None = None,
        filters: KernelFilters | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.observer: Observer = (
            observer if observer is not None else default_observer(self.config)
        )
        self._probe = probe
        self._own_probe = False
        self._filters: KernelFilters | None = filters
        self._lock = threading.RLock()
        self._nsmap: dict[Key, JobList] = {}
        self._draining: dict[Key, tuple[JobContext, ...]] = {}
        self._applied: dict[Key, KeyConfig] = {}
        self._jobs: dict[str, Job] = {}
        self._contexts: dict[str, dict[Key, JobContext]] = {}
        self._retired: dict[str, list[JobContext]] = {}
        self._holds: dict[str, dict[int, NamespaceHold]] = {}
        self._scopes: dict[str, int] = {}
        self._ended_subs: dict[str, list[Subscription]] = {}
        self._workers: list[CallbackWorker] = []
        self.topology = Topology()
        self._router = Router(self.topology.lookup_container)
        self._stop = threading.Event()
        self._reader = ReaderLoop(self._router, self._stop)
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopped = False
        self._final_stats: ProbeStats | None = None
        """The probe's last counters, kept when the hub closed it."""

    # lifecycle -----------------------------------------------------------
    @property
    def probe(self) -> Probe | None:
        return self._probe

    @property
    def last_error(self) -> str | None:
        """The reader loop's last failure, for operators."""
        return self._reader.last_error

    @property
    def routed(self) -> int:
        return self._router.routed

    @property
    def unrouted(self) -> int:
        return self._router.unrouted

    def start(self) -> Hub:
        """Load the probe (unless given), start the reader and topology threads."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        if self._filters is None:
            if self._probe is None:
                self._probe = Probe(
                    self.config.ring_bytes,
                    poll_ms=self.config.poll_ms,
                    tracepoint_syscalls=self.config.tracepoint_syscalls,
                    fair_share_pct=self.config.fair_share_pct,
                )
                self._own_probe = True
            self._filters = ProbeFilters(self._probe, self.config.max_filter_keys)
        self.observer.connect()
        self._spawn(lambda: self.observer.run(self.topology.apply, self._stop), "syshub-topology")
        if self._probe is not None:
            probe = self._probe
            self._spawn(lambda: self._reader.run(probe), "syshub-reader-loop")
        return self

    def run(self) -> None:
        """Start and block until :meth:`stop` (swoll's ``Run``); errors are raised."""
        self.start()
        self._stop.wait()

    def must_run(self) -> None:
        """:meth:`run`, or on any error log it (one line), stop and exit the process with
        status 1 (swoll's ``MustRun``, a fail-wrapper around ``Run``); Ctrl-C stops and exits
        with 130. :meth:`run` is the Pythonic entry point."""
        try:
            self.run()
        except KeyboardInterrupt:
            self.stop()
            sys.exit(130)
        except Exception as e:
            _log.critical("hub failed: %s: %s", type(e).__name__, e)
            self.stop()
            sys.exit(1)

    def stop(self) -> None:
        """Stop every job, release every filter, stop threads, close the probe.
        Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            running = [j for j in self._jobs.values() if not j.stopped]
        for job in running:
            self.delete_trace(job.trace)
        self._stop.set()
        if self._own_probe and self._probe is not None:
            self._final_stats = self._probe.stats()
            self._probe.close()  # ends a poll in progress at once
        for t in self._threads:
            t.join(timeout=5)
        for s in self._router.subscriptions():
            s.close()
        self.observer.close()

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads = [*(x for x in self._threads if x.is_alive()), t]  # ended: forgotten

    # jobs ----------------------------------------------------------------
    def run_trace(
        self,
        trace: Trace,
        *,
        target: Target | None = None,
        capture: CaptureSizes | None = None,
    ) -> Job:
        """Start a job for ``trace`` (non-blocking); returns it. ``target``
        (default: the containers the observer reports that match the Trace's
        selectors) and ``capture`` (argument capture sizes) are the job's."""
        return self.run_job(Job(trace, target=target or Target(), capture=capture))

    def run_job(self, job: Job) -> Job:
        """Start ``job`` (non-blocking). Raises :class:`HubError` if its id is
        taken or its target does not exist."""
        if not self._started:
            self.start()
        with self._lock:
            prev = self._jobs.get(job.job_id)
            if prev is not None and not prev.stopped:
                raise HubError(f"job `{job.job_id}` is already running")
            # A completed trace may run again: its new job replaces the old one.
            self._retired.pop(job.job_id, None)
            self._ended_subs.pop(job.job_id, None)
            self._jobs[job.job_id] = job
            self._contexts[job.job_id] = {}
            self._holds[job.job_id] = {}
            job.trace.mark_running(job.job_id)
            if not job.target.follows_observer:
                try:
                    self._apply_fixed_target(job)
                except HubError as e:
                    self._fail(job, str(e))
                    raise
                job.mark_applied()
        if job.target.follows_observer:
            self._spawn(lambda: self._follow(job), f"syshub-job-{job.job_id}")
        if job.duration > timedelta(0):
            timer = threading.Timer(job.duration.total_seconds(), self._expire, args=(job,))
            timer.daemon = True
            timer.start()
        return job

    def must_run_job(self, job: Job) -> Job:
        """Like :meth:`run_job`, but any failure is raised as :class:`HubError`."""
        try:
            return self.run_job(job)
        except HubError:
            raise
        except Exception as e:
            raise HubError(f"job `{job.job_id}` failed to start: {e}") from e

    def wait_applied(self, trace: Trace | Job | str, timeout: float | None = None) -> bool:
        """Block until the kernel filters the job needs for its initial targets
        are installed (for observer-driven jobs: every container the observer
        listed at start); True if they are. Commands can then be released
        without missing a call."""
        return self.job(self._job_id(trace)).wait_applied(timeout)

    def job(self, job_id: str) -> Job:
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise HubError(f"job not found: `{job_id}`") from None

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def delete_trace(self, trace: Trace | Job | str) -> None:
        """Stop the trace's job and release its filters; route what the kernel
        had already emitted for it (up to ``config.flush_timeout``); mark it
        Complete and end its subscriptions (queued events stay readable)."""
        job_id = self._job_id(trace)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise HubError(f"job not found: `{job_id}`")
            if job.stopped:
                return
            # Under the lock: no container event of this job can push after this.
            job.stop()
            keys = set(self._contexts.get(job_id, {}))
            self._abort(job)
        self.flush(keys, self.config.flush_timeout)
        with self._lock:
            # Its counts are final: nothing of the job stays in the routes,
            # also for keys its containers released earlier.
            for key in [k for k, cs in self._draining.items() if any(c.job is job for c in cs)]:
                self._draining[key] = tuple(c for c in self._draining[key] if c.job is not job)
                self._publish_route(key)
            subs = self._router.job_subs.get(job_id, ())
            self._ended_subs[job_id] = [*self._ended_subs.get(job_id, []), *subs]
        job.trace.update_status(state=TraceState.COMPLETE, completion_time=datetime.now(UTC))
        if not job.target.follows_observer:
            job.mark_done()
        for sub in subs:
            sub.close()

    def _abort(self, job: Job) -> None:
        """Release everything a job holds in the kernel (under the lock)."""
        for ctx in list(self._contexts.get(job.job_id, {}).values()):
            self._release(ctx)
        self._contexts[job.job_id] = {}
        for hold in self._holds.pop(job.job_id, {}).values():
            hold.release()
        scope = self._scopes.pop(job.job_id, None)
        if scope is not None and self._filters is not None:
            self._filters.remove_scope(scope)

    def _fail(self, job: Job, reason: str) -> None:
        """A job that could not start: it holds nothing and its trace is Failed
        (under the lock)."""
        job.stop()
        job.error = reason
        self._abort(job)
        job.trace.update_status(state=TraceState.FAILED, completion_time=datetime.now(UTC))
        job.mark_done()

    def _expire(self, job: Job) -> None:
        if not job.stopped:
            self.delete_trace(job)

    def _apply_fixed_target(self, job: Job) -> None:
        """Contexts of a job whose target is fixed kernel keys (under the lock)."""
        assert self._filters is not None
        t = job.target
        if t.kind is TargetKind.EVERY_NAMESPACE:
            ns = 0
        elif t.kind is TargetKind.PID_NAMESPACE:
            ns = t.value
        elif t.kind is TargetKind.NAMESPACE_OF:
            hold = NamespaceHold.of(t.value, self.config.alt_root)
            if hold is None:
                raise HubError(f"cannot open the pid namespace of process {t.value}")
            self._holds[job.job_id][hold.inode] = hold
            ns = hold.inode
        else:
            try:
                ns = self._filters.add_scope(t.value)
            except Exception as e:
                raise HubError(f"cannot trace process {t.value}: {e}") from None
            self._scopes[job.job_id] = ns
        for nr in job.nrs:
            self.push_job(job, ns, nr)

    def _follow(self, job: Job) -> None:
        """Follow the job's selection until it is stopped (job thread)."""
        spec = job.trace.spec
        observer = self.observer.copy(
            namespace=job.trace.namespace or None,
            label_selector=None if spec.label_selector.is_empty() else spec.label_selector,
            field_selector=None if spec.field_selector.is_empty() else spec.field_selector,
        )
        try:
            observer.run(
                lambda ev: self._on_container(job, ev), job._stopped, on_synced=job.mark_applied
            )
        finally:
            job.mark_done()

    def _on_container(self, job: Job, ev: ContainerEvent) -> None:
        c = ev.container
        if not job.selects(c):
            return
        with self._lock:
            if job.stopped:
                return
            if ev.kind is ContainerEventKind.START:
                self.topology.apply(ev)
                if job.container_started(c):
                    hold = NamespaceHold.of(c.pid, self.config.alt_root, expect=c.pid_ns)
                    if hold is not None:
                        self._holds[job.job_id][c.pid_ns] = hold
                    try:
                        for nr in job.nrs:
                            self.push_job(job, c.pid_ns, nr)
                    except HubError as e:
                        # Counted on the job, never raised into the observer:
                        # the container stays untraced rather than half traced.
                        job.error = f"container {c.name or c.id}: {e}"
                        job.errors += 1
                        self._drop_namespace(job, c.pid_ns)
            elif job.container_stopped(c):
                self._drop_namespace(job, c.pid_ns)

    def _drop_namespace(self, job: Job, pid_ns: int) -> None:
        """Release a job's contexts for one pid namespace, then its hold (under the lock)."""
        for nr in job.nrs:
            ctx = self._contexts.get(job.job_id, {}).get((pid_ns, nr))
            if ctx is not None:
                self._release(ctx)
        hold = self._holds.get(job.job_id, {}).pop(pid_ns, None)
        if hold is not None:
            hold.release()

    # contexts and kernel filters -------------------------------------------
    def push_job(self, job: Job, pid_ns: int, nr: int) -> JobContext:
        """Add ``job``'s interest in (pid_ns, nr); idempotent per job and key."""
        with self._lock:
            ctxs = self._contexts.setdefault(job.job_id, {})
            existing = ctxs.get((pid_ns, nr))
            if existing is not None:
                return existing
            if job.stopped:
                raise HubError(f"job `{job.job_id}` is stopped")
            key = (pid_ns, nr)
            new_key = key not in self._applied
            if new_key:
                # A re-added key restarts its kernel sequence: contexts still
                # draining the old one must not take the new numbers.
                self._draining.pop(key, None)
            ctx = JobContext(job, pid_ns, nr)
            bucket = self._nsmap.setdefault(key, JobList())
            bucket.push(ctx)
            try:
                self._apply_key(key)
            except Exception as e:
                bucket.remove(ctx)
                if not len(bucket):
                    del self._nsmap[key]
                name = syscalls.lookup(nr).name
                raise HubError(f"cannot install the {name} filter of key {pid_ns}: {e}") from e
            # The sequence is read once the kernel samples at the new rate: a
            # call sampled at the old rate is never counted as this job's drop.
            # A key new to the kernel starts at 0: every call it matched is ours.
            ctx.base_seq = 0 if new_key else self._sequences().get(key, 0)
            ctxs[key] = ctx
            self._publish_route(key)
            return ctx

    def _release(self, ctx: JobContext) -> None:
        """End a context (under the lock): it stops counting at the key's
        current sequence and drains what the kernel already emitted."""
        key = ctx.key
        bucket = self._nsmap.get(key)
        if bucket is None or ctx not in bucket:
            return
        ctx.end_seq = self._sequences().get(key, ctx.base_seq)
        bucket.remove(ctx)
        if not len(bucket):
            del self._nsmap[key]
        self._contexts.get(ctx.job.job_id, {}).pop(key, None)
        self._retired.setdefault(ctx.job.job_id, []).append(ctx)
        self._draining[key] = (*self._draining.get(key, ()), ctx)
        self._sync_key(key)

    def _sync_key(self, key: Key) -> None:
        """Make the kernel hold the plan's filter for one key and publish its
        route (under the lock)."""
        self._apply_key(key)
        self._publish_route(key)

    def _apply_key(self, key: Key) -> None:
        """Apply the plan's operation for one key; ``_applied`` changes only
        when the kernel took it."""
        assert self._filters is not None, "hub not started"
        desired = key_config((c.rate, c.capture) for c in self._nsmap.get(key, ()))
        op = plan_key(key, self._applied.get(key), desired)
        if op is None:
            return
        self._filters.apply(op)
        if desired is None:
            del self._applied[key]
        else:
            self._applied[key] = desired

    def _publish_route(self, key: Key) -> None:
        """Replace the router's entry for ``key`` (copy on write, under the lock)."""
        live = tuple(self._nsmap.get(key, ()))
        entry = live + self._draining.get(key, ())
        if not self._draining.get(key):
            self._draining.pop(key, None)
        routes = dict(self._router.routes)
        if entry:
            routes[key] = entry
        else:
            routes.pop(key, None)
        self._router.routes = routes

    def _sequences(self) -> dict[Key, int]:
        if self._filters is None or (self._probe is not None and self._probe.closed):
            return {}
        return self._filters.sequences()

    def desired_filters(self) -> dict[Key, int]:
        """The filter set live contexts require: key -> gcd of their rates."""
        with self._lock:
            out: dict[Key, int] = {}
            for key, bucket in self._nsmap.items():
                cfg = key_config((c.rate, c.capture) for c in bucket)
                if cfg is not None:
                    out[key] = cfg.sample_rate
            return out

    # events --------------------------------------------------------------
    def route(self, events: Any) -> None:
        """Route a batch (a :class:`~syshub.probe.Batch` or a sequence of
        events) to job and path subscribers (the reader thread's work)."""
        self._reader.route(events)

    def flush(self, keys: Iterable[Key] | None = None, timeout: float = 1.0) -> bool:
        """Wait until what the kernel emitted on ``keys`` (default: all) has
        been routed (:meth:`ReaderLoop.flush`); calls still running are not
        waited for. True if so within ``timeout``."""
        return self._reader.flush(self._probe, keys, timeout)

    def write_event(self, ev: TraceEvent) -> None:
        """Publish an event on its path streams (swoll's ``WriteEvent``)."""
        self._router.publish_path(ev)

    def write_job_event(self, job: Job | str, ev: TraceEvent) -> None:
        """Publish an event on one job's stream, to its subscribers."""
        job_id = job.job_id if isinstance(job, Job) else job
        for sub in self._router.job_subs.get(job_id, ()):
            sub.put(ev)

    # subscriptions -------------------------------------------------------
    def subscribe(
        self,
        target: Trace | Job | str,
        *,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> Subscription:
        """A queue of the events of a trace / job (by object or job id). A
        :class:`Job` not yet run may be subscribed to, so that none of its
        events is routed before the queue exists; a trace or id must name a
        job of this hub."""
        job_id = target.job_id if isinstance(target, Job) else self.job(self._job_id(target)).job_id
        return self._router.subscribe("job_subs", job_id, job_id, maxsize, overflow)

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
        key = path_key(path)
        return self._router.subscribe("path_subs", key, name or "/".join(key), maxsize, overflow)

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
            return str(target.status.job_id)
        return target

    # accounting ----------------------------------------------------------
    def stats(self) -> HubStats:
        """Per key (kernel) and per job (per key, per subscriber) counters;
        per key and per job: matched = delivered + dropped + sampled_out."""
        probe = self._probe
        probe_stats = self._final_stats
        if probe is not None and not probe.closed:
            probe_stats = probe.stats()
        seqs = self._sequences()
        jobs: dict[str, JobStats] = {}
        with self._lock:
            for job_id, job in self._jobs.items():
                live = [(c, seqs.get(c.key, c.base_seq)) for c in self._contexts[job_id].values()]
                done = [(c, c.end_seq or c.base_seq) for c in self._retired.get(job_id, [])]
                keys = tuple(
                    JobKeyStats(c.pid_ns, c.nr, *c.accounting(seq)) for c, seq in live + done
                )
                subs = tuple(
                    s.stats()
                    for s in (
                        *self._ended_subs.get(job_id, ()),
                        *self._router.job_subs.get(job_id, ()),
                    )
                )
                jobs[job_id] = JobStats.of(job_id, job.trace.status.state.value, keys, subs)
        return HubStats(
            probe_stats,
            jobs,
            self._router.routed,
            self._router.unrouted,
            reader_errors=self._reader.errors,
            lost=self._reader.lost,
        )
