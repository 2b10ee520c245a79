"""The agent's traces, keyed by (namespace, name): each is a Trace and the
Hub job that runs it. A trace that ended (its duration, or the Hub stopped)
stays listed as Complete until it is deleted; creating a trace under the name
of a running one is ALREADY_EXISTS.

With a :class:`~syshub.agent.trace_store.TraceStore`, traces created with
``persist=True`` (the API's) are saved, and :meth:`TraceRegistry.resume` runs
them again in a restarted agent: each with its job id and start time, until
the end of its duration (one whose duration has elapsed is not resumed); a
process target only if that process still runs (not a recycled pid)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from syshub.agent.requests import DEFAULT_NAMESPACE, RequestError
from syshub.agent.trace_store import StoredTrace, TraceStore, TraceStoreError, process_start
from syshub.errors import HubError
from syshub.hub import Hub, Job, Target
from syshub.hub.jobs import TargetKind
from syshub.hub.plan import CaptureSizes
from syshub.hub.retention import forget_job
from syshub.spec.trace import Trace

Key = tuple[str, str]

log = logging.getLogger("syshub.agent")

#: Targets named by a process id (checked against the process's start time).
PID_TARGETS = (TargetKind.PROCESS, TargetKind.NAMESPACE_OF)
#: Deleted traces whose jobs the Hub keeps (their final counters); older ones are forgotten.
KEEP_DELETED = 64


@dataclass(frozen=True)
class TraceEntry:
    trace: Trace
    job: Job

    @property
    def key(self) -> Key:
        return self.trace.key

    @property
    def running(self) -> bool:
        return not self.job.stopped


class TraceRegistry:
    """Create, find, list and delete the agent's traces on its Hub."""

    def __init__(self, hub: Hub, store: TraceStore | None = None) -> None:
        self.hub = hub
        self.store = store
        self._lock = threading.Lock()
        self._entries: dict[Key, TraceEntry] = {}
        self._deleted: deque[str] = deque()

    def create(
        self,
        trace: Trace,
        target: Target | None = None,
        capture: CaptureSizes | None = None,
        wait: float = 0.0,
        *,
        persist: bool = False,
    ) -> TraceEntry:
        """Run ``trace`` on the Hub; waits up to ``wait`` s for its filters.
        ``persist``: save it for a restarted agent (needs a store)."""
        entry = self._run(Job(trace, target=target or Target(), capture=capture))
        if self.store is not None:
            if persist:
                self._save(entry)
            else:  # this key is no longer the API's trace
                self._forget(entry.key)
        if wait > 0:
            entry.job.wait_applied(wait)
        return entry

    def _run(self, job: Job) -> TraceEntry:
        trace = job.trace
        key = trace.key
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.running:
                raise RequestError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"name: trace {key[0]}/{key[1]} already exists (job {old.job.job_id})",
                )
            try:
                self.hub.must_run_job(job)
            except HubError as e:
                raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, str(e)) from None
            entry = TraceEntry(trace, job)
            self._entries[key] = entry
        if old is not None:
            self._done_with(old)
        return entry

    def _done_with(self, entry: TraceEntry) -> None:
        """The entry's job is no longer listed: the Hub may forget it once
        KEEP_DELETED later ones are gone too."""
        with self._lock:
            self._deleted.append(entry.job.job_id)
            old = [self._deleted.popleft() for _ in range(len(self._deleted) - KEEP_DELETED)]
        for job_id in old:
            forget_job(self.hub, job_id)

    def _save(self, entry: TraceEntry) -> None:
        assert self.store is not None
        job, t = entry.job, entry.job.target
        stored = StoredTrace(
            entry.trace,
            job.job_id,
            entry.trace.status.start_time or datetime.now(UTC),
            t,
            job.capture,
            process_start(t.value) if t.kind in PID_TARGETS else None,
        )
        try:
            self.store.save(stored)
        except TraceStoreError as e:
            log.warning(
                "trace not saved: a restarted agent will not resume it",
                extra={"trace": f"{entry.key[0]}/{entry.key[1]}", "error": str(e)},
            )

    def resume(self) -> list[TraceEntry]:
        """Run the stored traces again (at agent start, once the Hub runs).
        A trace that cannot be resumed is logged (one line) and its file
        removed; a file that does not parse is logged and left alone."""
        if self.store is None:
            return []
        try:
            stored = self.store.load()
        except TraceStoreError as e:
            log.warning("stored traces not resumed", extra={"error": str(e)})
            return []
        out: list[TraceEntry] = []
        for s in stored:
            name = f"{s.trace.namespace}/{s.trace.name}"
            why = self._why_not(s)
            if why is None:
                try:
                    entry = self._run(Job(s.trace, s.job_id, s.target, s.capture))
                except RequestError as e:
                    why = e.message
                else:
                    s.trace.update_status(start_time=s.started)
                    self._expire_at(entry, s)
                    out.append(entry)
                    log.info("trace resumed", extra={"trace": name, "job": s.job_id})
                    continue
            log.warning("stored trace not resumed", extra={"trace": name, "reason": why})
            self._forget(s.trace.key)
        return out

    @staticmethod
    def _why_not(s: StoredTrace) -> str | None:
        left = s.remaining()
        if left is not None and left.total_seconds() <= 0:
            return "its duration has elapsed"
        t = s.target
        if t.kind in PID_TARGETS and (s.pid_start is None or process_start(t.value) != s.pid_start):
            return f"process {t.value} of its target is gone"
        return None

    def _expire_at(self, entry: TraceEntry, s: StoredTrace) -> None:
        """End a resumed trace when its duration (counted from its first start) is over."""
        left = s.remaining()
        if left is None:
            return
        timer = threading.Timer(left.total_seconds(), self._expire, args=(entry,))
        timer.daemon = True  # a trace ended by the Hub's stop: nothing to do
        timer.start()

    def _expire(self, entry: TraceEntry) -> None:
        if entry.running:
            self.hub.delete_trace(entry.job)

    def get(self, key: Key) -> TraceEntry:
        """The trace ``(namespace, name)``; namespace "" finds the one of
        "default", else the one of every namespace ("")."""
        keys = [(DEFAULT_NAMESPACE, key[1]), key] if not key[0] else [key]
        with self._lock:
            entry = next((self._entries[k] for k in keys if k in self._entries), None)
        if entry is None:
            ns = key[0] or DEFAULT_NAMESPACE
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"name: no trace {ns}/{key[1]}")
        return entry

    def list(self, namespace: str = "") -> list[TraceEntry]:
        with self._lock:
            entries = list(self._entries.values())
        return sorted(
            (e for e in entries if not namespace or e.key[0] == namespace), key=lambda e: e.key
        )

    def delete(self, key: Key) -> TraceEntry:
        """Stop the trace's job (its streams end), forget it and its file."""
        entry = self.get(key)
        if entry.running:
            self.hub.delete_trace(entry.job)
        with self._lock:
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
        self._forget(entry.key)
        self._done_with(entry)
        return entry

    def _forget(self, key: Key) -> None:
        if self.store is None:
            return
        try:
            self.store.remove(key)
        except TraceStoreError as e:
            log.warning(
                "stored trace not removed", extra={"trace": f"{key[0]}/{key[1]}", "error": str(e)}
            )
