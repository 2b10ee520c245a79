"""The per-node Trace controller (see the package doc)."""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from syshub.agent.controller.cri_health import CriHealth
from syshub.agent.controller.kube import Conflict, NotFound, TraceApi, api_client_of
from syshub.agent.controller.report import NORMAL, WARNING, EventPrinter, JsonLines, event_body
from syshub.agent.controller.runs import (
    TraceRun,
    parse_time,
    seconds_of,
    with_duration,
)
from syshub.agent.controller.status import (
    FINISHED,
    RUNNING,
    entry_status,
    field_manager,
    job_id_for,
    node_entries,
    overall_patch,
    spread,
    writer_rank,
)
from syshub.agent.controller.watcher import GroupWatch, Item, object_key
from syshub.errors import SyshubError
from syshub.hub import Hub, Job, Target
from syshub.spec.crd import GROUPS
from syshub.spec.model import API_GROUP
from syshub.spec.trace import Trace
from syshub.topology.kubernetes.api import Scope, one_line
from syshub.topology.kubernetes.watch import Backoff

log = logging.getLogger("syshub.agent.controller")

RunKey = tuple[str, str, str]  # group, namespace, name


#: Job errors that say the kernel filters of this node are at their limit.
_LIMIT_WORDS = ("filter-key limit", "filter map is full")


def error_reason(message: str) -> str:
    """The Event reason of a job error: FilterLimit when the node's filter keys ran out
    (``max_filter_keys`` or a full kernel map), else TraceError."""
    return "FilterLimit" if any(w in message for w in _LIMIT_WORDS) else "TraceError"


class Registry(Protocol):
    """The part of the agent's trace registry the controller uses."""

    def create(self, trace: Trace, target: Target | None = ..., capture: Any = ...) -> Any: ...

    def delete(self, key: tuple[str, str]) -> Any: ...


class Controller:
    """Runs the Traces of the watched API groups on this node's Hub.

    ``api_client``: a ``kubernetes.client.ApiClient``, a kubeconfig path or API URL, or None
    (in-cluster, else ``$KUBECONFIG``). ``namespace``: watch one namespace (None: all).
    ``groups``: API groups (or the short names ``syshub``/``swoll``). ``registry``: the
    agent's trace registry (so its gRPC API lists these traces); None runs jobs on the Hub
    directly. ``out``: where the traces' events go as JSON lines. ``status_interval``: how
    often changed counters are written at most (state changes are written at once).
    ``cri_endpoint``: the CRI the Hub's observer reads containers from; while Traces run it
    is checked every ``cri_interval`` seconds, and an unreadable CRI is reported on them.
    ``takeover``: how long the stored overall status may stay wrong before the next-ranked
    node writes it (:mod:`.status`); the writer itself waits ``settle`` seconds, so the
    entries other nodes wrote at about the same time are in the view it derives from.
    ``no_match_delay``: when no node reports a Trace this long (times 1-2, per node) after
    this node looked at its pods, this node reports it (Running with 0 containers, then
    Complete after its duration) so it never stays Pending.
    """

    def __init__(
        self,
        hub: Hub,
        api_client: Any,
        node_name: str,
        namespace: str | None = None,
        groups: Iterable[str] = (API_GROUP,),
        *,
        registry: Registry | None = None,
        out: TextIO | None = None,
        status_interval: float = 15.0,
        tick: float = 0.5,
        backoff: Backoff | None = None,
        watch_timeout: int = 300,
        request_timeout: float = 30.0,
        cri_endpoint: str | None = None,
        cri_interval: float = 2.0,
        takeover: float = 10.0,
        no_match_delay: float = 2.0,
        settle: float = 0.25,
    ) -> None:
        if not node_name:
            raise ValueError("the controller needs this node's name")
        self.hub = hub
        self.node = node_name
        self.namespace = namespace or None
        self.groups = tuple(dict.fromkeys(GROUPS.get(g, g) for g in groups))
        unknown = [g for g in self.groups if g not in GROUPS.values()]
        if unknown or not self.groups:
            raise ValueError(f"unknown trace API group(s) {unknown}: use syshub or swoll")
        self.registry = registry
        self.lines = JsonLines(out if out is not None else sys.stdout)
        self.status_interval = status_interval
        self.tick = tick
        self.backoff = backoff or Backoff(0.5, 30.0)
        self._api_arg = api_client
        self._api_client: Any = None
        self._own_client = False
        self._scope = Scope(None, self.namespace, None, watch_timeout, request_timeout)
        self.apis: dict[str, TraceApi] = {}
        self._watches: list[GroupWatch] = []
        self._work: queue.Queue[Item] = queue.Queue()
        self._runs: dict[RunKey, TraceRun] = {}
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.synced: dict[str, threading.Event] = {g: threading.Event() for g in self.groups}
        self.delete_seconds: list[float] = []
        """How long stopping each deleted Trace's job took (its watch event to released
        kernel filters and routed last events)."""
        self.errors = 0
        self.takeover = takeover
        self.no_match_delay = no_match_delay
        self.settle = settle
        self.conflicts = 0
        """Overall status writes refused with 409 (a stale view)."""
        self.cri: CriHealth | None = None
        if cri_endpoint:
            self.cri = CriHealth(cri_endpoint, cri_interval, min(cri_interval, 5.0), self._live)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Controller:
        self._api_client, self._own_client = api_client_of(self._api_arg)
        manager = field_manager(self.node)
        for group in self.groups:
            api = TraceApi(self._scope, group, self._api_client, manager)
            api.ensure_client()
            self.apis[group] = api
            self._watches.append(GroupWatch(api, self._work, self.backoff, self._stop_now))
        self._worker = threading.Thread(target=self._loop, name="syshub-k8s-controller")
        self._worker.daemon = True
        self._worker.start()
        for w in self._watches:
            w.start()
        if self.cri is not None:
            self.cri.start()
        return self

    def stop(self) -> None:
        """Stop watching and release every job's kernel filters (status entries stay: a
        restarted agent resumes them)."""
        for w in self._watches:
            w.stop()
        if self.cri is not None:
            self.cri.stop()
        self._stop.set()
        if self._worker is not None:
            self._worker.join(10)
        for run in list(self._runs.values()):
            self._stop_job(run)
        self._runs.clear()
        if self._own_client and self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Until every group's first LIST has been handled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for ev in self.synced.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not ev.wait(left):
                return False
        return True

    def runs(self) -> dict[RunKey, TraceRun]:
        return dict(self._runs)

    def _live(self) -> bool:
        """Whether some Trace runs here (then the CRI is checked)."""
        return any(r.job is not None and not r.finished for r in list(self._runs.values()))

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        next_tick = time.monotonic() + self.tick
        while not self._stop.is_set():
            try:
                item = self._work.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick
                    self._refresh_all()
            except Exception as exc:  # never let one Trace end the controller
                self.errors += 1
                log.exception("trace controller: %s", one_line(exc))

    def _stop_now(self, obj: dict[str, Any]) -> None:
        """On the watch thread: a deleted Trace's job stops now (the Hub is thread-safe and
        the job id names this very object); the worker forgets it next."""
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        job_id = job_id_for(str(meta.get("name") or ""), str(meta.get("uid") or ""))
        try:
            job = self.hub.job(job_id)
        except SyshubError:
            return  # it does not run here
        if job.stopped:
            return
        t0 = time.monotonic()
        try:
            self.hub.delete_trace(job)
        except Exception as exc:
            log.warning("stopping job %s failed: %s", job_id, one_line(exc))
            return
        self.delete_seconds.append(time.monotonic() - t0)

    def _handle(self, item: Item) -> None:
        kind, group, obj = item
        if kind == "SYNCED":
            self.synced[group].set()
            return
        assert obj is not None
        namespace, name = object_key(obj)
        key = (group, namespace, name)
        if kind == "DELETED":
            run = self._runs.pop(key, None)
            if run is not None:
                self._stop_job(run)  # the watch thread stopped the job already
                log.info("trace %s deleted", run.label, extra={"trace": run.label})
            return
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        run = self._runs.get(key)
        if run is not None and (run.uid != uid or run.spec != obj.get("spec")):
            self._stop_job(run)  # a new object under the name, or its spec changed
            run = None
        if run is None:
            run = TraceRun(group, namespace, name, uid, self.node, obj, spec=obj.get("spec"))
            self._runs[key] = run
            self._begin(run)
        else:
            run.obj = obj
        self._write_overall(run)

    # ------------------------------------------------------------------ one trace
    def _begin(self, run: TraceRun) -> None:
        try:
            trace = Trace.from_dict(run.obj)
        except SyshubError as exc:
            self._failed(run, "InvalidTrace", str(exc))
            return
        except Exception as exc:  # a manifest the model cannot even read
            self._failed(run, "InvalidTrace", one_line(exc))
            return
        mine = run.own_entry()
        start_time = None
        if mine is not None and mine.get("jobID") == run.job_id:
            run.entry = mine
            run.written = dict(mine)
            if str(mine.get("state")) in FINISHED:
                return  # done here before a restart: nothing to resume
            start_time = str(mine.get("startTime") or "") or None
            duration = seconds_of(trace.spec.duration)
            started = parse_time(start_time)
            if duration is not None and started is not None:
                left = duration - (datetime.now(UTC) - started).total_seconds()
                if left <= 0:
                    run.complete(start_time)
                    self._write_entry(run, force=True)
                    self._post(run, NORMAL, "Completed", "duration elapsed while restarting")
                    return
                trace = Trace.from_dict(with_duration(run.obj, left))
        trace.update_status(job_id=run.job_id)
        run.trace = trace
        try:
            run.job = self._run_job(run, trace)
        except Exception as exc:
            self._failed(run, "StartFailed", one_line(exc))
            return
        run.begin(start_time)
        log.info("trace %s running as job %s", run.label, run.job_id, extra={"trace": run.label})

    def _run_job(self, run: TraceRun, trace: Trace) -> Job:
        label = {"trace": run.label, "group": run.group, "job": run.job_id, "node": self.node}
        if self.registry is not None:
            entry = self.registry.create(trace, Target.containers(), None)
            job: Job = entry.job
            sub = self.hub.subscribe(job)
        else:
            job = Job(trace, target=Target.containers())
            sub = self.hub.subscribe(job)  # before it runs: no event is routed unseen
            self.hub.must_run_job(job)
        run.printer = EventPrinter(sub, self.lines, label, f"syshub-k8s-out-{run.job_id}")
        return job

    def _stop_job(self, run: TraceRun) -> None:
        job, run.job = run.job, None
        if job is not None:
            try:
                if self.registry is not None:  # also forgets a completed one
                    self.registry.delete((job.trace.namespace, job.trace.name))
                elif not job.stopped:
                    self.hub.delete_trace(job)
            except Exception as exc:
                log.warning("trace %s: stopping its job failed: %s", run.label, one_line(exc))
        if run.printer is not None:
            run.printer.join(2.0)

    def _failed(self, run: TraceRun, reason: str, message: str) -> None:
        run.fail(message)
        log.warning("trace %s: %s", run.label, message, extra={"trace": run.label})
        self._post(run, WARNING, reason, message)
        self._write_entry(run, force=True)

    # ------------------------------------------------------------------ status
    def _refresh_all(self) -> None:
        now = time.monotonic()
        live = [r for r in self._runs.values() if r.job is not None and not r.finished]
        ended = {id(r): r.ended() for r in live}  # before the counters: then they are final
        jobs = self.hub.stats().jobs if live else {}
        live_ns = frozenset(k[0] for k in self.hub.desired_filters()) if live else frozenset()
        cri_error = self.cri.error if self.cri is not None else None
        for run in live:
            assert run.job is not None
            was_running = run.entry.get("state") == RUNNING
            if run.set_cri(cri_error):
                self._cri_changed(run)
            run.refresh(jobs.get(run.job.job_id), ended[id(run)], live_ns)
            job = run.job
            if job.error and job.error != run.last_job_error:
                run.last_job_error = job.error
                self._post(run, WARNING, error_reason(job.error), job.error)
            if not run.reportable() and not self._stand_in(run, now):
                continue
            if "Started" not in run.posted and run.written is None and not run.stand_in:
                hosts = len(job.monitored_hosts())
                syscalls = ",".join(job.trace.spec.syscalls)
                self._post(run, NORMAL, "Started", f"tracing {syscalls} in {hosts} container(s)")
            if run.finished and was_running:
                self._post(
                    run,
                    NORMAL,
                    "Completed",
                    f"matched {run.entry.get('matched', 0)}, "
                    f"delivered {run.entry.get('delivered', 0)}",
                )
            self._write_entry(run)
        for run in list(self._runs.values()):
            if run.written is None and run.job is not None and run.finished:
                if self._stand_in(run, now):  # the duration ended before anyone reported
                    self._write_entry(run, force=True)
            elif run.mismatch_since is not None:
                self._write_overall(run)  # a takeover, when the writer stays silent

    def _cri_changed(self, run: TraceRun) -> None:
        if run.cri_error is not None:
            message = f"new pods cannot be traced on this node: {run.cri_error}"
            self._post(run, WARNING, "CRIUnreadable", message, once=False)
        else:
            self._post(run, NORMAL, "CRIReadable", "the CRI answers again", once=False)

    def _stand_in(self, run: TraceRun, now: float) -> bool:
        """Whether this node reports a Trace no node reports: it looked at its pods (none
        matched) a per-node time ago and still no entry exists. The delay makes one node
        do it in the normal case; a node with matching pods reports at once anyway."""
        job = run.job
        if run.stand_in:
            return True
        if job is None or run.written is not None or node_entries(run.obj):
            run.applied_at = None
            return False
        if run.applied_at is None:
            if not job.wait_applied(0):
                return False
            run.applied_at = now
        if now - run.applied_at < self.no_match_delay * (1.0 + spread(run.uid, self.node)):
            return False
        run.stand_in = True
        self._post(
            run,
            NORMAL,
            "NoMatchingPods",
            "no pod matches the trace on this node and no node reports it: this node "
            "reports it (0 containers)",
        )
        return True

    def _write_entry(self, run: TraceRun, force: bool = False) -> None:
        entry = run.entry
        old = run.written
        if old == entry:
            return
        counters_only = old is not None and all(
            old.get(k) == entry.get(k) for k in ("state", "containers", "errors", "lastError")
        )
        now = time.monotonic()
        if counters_only and not force and now - run.written_at < self.status_interval:
            return
        try:
            obj = self.apis[run.group].apply_status(
                run.namespace, run.name, entry_status(self.node, entry)
            )
        except NotFound:
            return  # deleted meanwhile: the watch says so next
        except Exception as exc:
            log.warning("trace %s: status write failed: %s", run.label, one_line(exc))
            return
        run.written = dict(entry)
        run.written_at = now
        if isinstance(obj, dict):
            run.obj = obj
            self._write_overall(run)

    def _write_overall(self, run: TraceRun) -> None:
        """Make the overall status what the entries say: the node ranked first among those
        with an entry writes it; the next one only when it stays wrong for a takeover
        period (see :mod:`.status`). A stale view is refused by the precondition (409) and
        not retried on the same version: the watch brings the newer object."""
        if run.written is None:
            return
        patch = overall_patch(run.obj, run.group)
        if patch is None:
            run.mismatch_since = None
            return
        now = time.monotonic()
        if run.mismatch_since is None:
            run.mismatch_since = now
        rank = writer_rank(run.obj, self.node)
        if rank is None or now - run.mismatch_since < self.settle + rank * self.takeover:
            return
        rv = patch["metadata"]["resourceVersion"]
        if rv is not None and rv == run.refused_rv:
            return
        try:
            obj = self.apis[run.group].patch_status(run.namespace, run.name, patch)
        except Conflict:
            self.conflicts += 1
            run.refused_rv = rv
            return
        except NotFound:
            return  # deleted: the watch says so next
        except Exception as exc:
            log.warning("trace %s: status write failed: %s", run.label, one_line(exc))
            return
        if isinstance(obj, dict):
            run.obj = obj
            run.mismatch_since = None

    def _post(
        self, run: TraceRun, kind: str, reason: str, message: str, *, once: bool = True
    ) -> None:
        """An Event about the Trace; ``once``: not again for the same reason and message."""
        tag = reason if reason in ("Started", "Completed") else f"{reason}:{message}"
        if once and tag in run.posted:
            return
        run.posted.add(tag)
        body = event_body(run.obj, self.node, kind, reason, message)
        try:
            self.apis[run.group].create_event(run.namespace or "default", body)
        except Exception as exc:
            log.warning("trace %s: cannot post event %s: %s", run.label, reason, one_line(exc))
