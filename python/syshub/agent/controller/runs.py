"""One Trace object on this node: its Hub job, its event printer and its node entry.

A :class:`TraceRun` is touched only by the controller's worker thread. Its node entry
(:class:`~syshub.spec.crd.NodeStatus` as a dict) is computed from the job and the Hub's
counters; the controller writes it when it changed (see :mod:`.status`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from syshub.agent.controller.report import EventPrinter
from syshub.agent.controller.status import (
    COMPLETE,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    job_id_for,
    now_text,
)
from syshub.hub import Job
from syshub.hub.stats import JobStats
from syshub.spec.crd import NodeStatus
from syshub.spec.model import TraceState
from syshub.spec.trace import Trace


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def seconds_of(duration: object) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return float(duration)  # type: ignore[arg-type]


def with_duration(obj: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A copy of the manifest whose ``spec.duration`` is ``seconds`` (for a resumed run)."""
    out = copy.deepcopy(obj)
    out.setdefault("spec", {})["duration"] = f"{max(seconds, 0.001):.3f}s"
    return out


@dataclass(eq=False)
class TraceRun:
    group: str
    namespace: str
    name: str
    uid: str
    node: str
    obj: dict[str, Any]
    spec: Any = None
    trace: Trace | None = None
    job: Job | None = None
    printer: EventPrinter | None = None
    entry: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] | None = None
    """The entry as last written (None: this node has not reported the trace)."""
    written_at: float = 0.0
    posted: set[str] = field(default_factory=set)
    """Reasons of the Events already posted (one Started, one Completed, each error once)."""
    last_job_error: str | None = None
    cri_error: str | None = None
    """Why this node's CRI is unreadable now (None: it answers)."""
    cri_outages: int = 0
    mismatch_since: float | None = None
    """Since when (monotonic) the stored overall fields differ from the derived ones."""
    stand_in: bool = False
    """This node reports the trace although no pod matches here: no node had an entry."""
    applied_at: float | None = None
    """When (monotonic) the job had looked at this node's pods."""
    refused_rv: str | None = None
    """The resourceVersion an overall write was refused at (409): not tried again."""
    """This node reports the trace although no pod matches here: no node had an entry."""

    @property
    def job_id(self) -> str:
        return job_id_for(self.name, self.uid)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return str(self.entry.get("state")) in FINISHED

    def own_entry(self) -> dict[str, Any] | None:
        """This node's entry as stored in the object (a restart finds it there)."""
        status = self.obj.get("status")
        nodes = status.get("nodes") if isinstance(status, dict) else None
        entry = nodes.get(self.node) if isinstance(nodes, dict) else None
        return dict(entry) if isinstance(entry, dict) else None

    def fail(self, message: str) -> None:
        """The trace cannot run here: Failed, with the reason."""
        self.entry = NodeStatus(
            state=FAILED,
            job_id=self.job_id,
            errors=int(self.entry.get("errors", 0)) + 1,
            last_error=message,
            start_time=self.entry.get("startTime"),
            completion_time=now_text(),
        ).to_dict()

    def begin(self, start_time: str | None = None) -> None:
        self.entry = NodeStatus(
            state=RUNNING, job_id=self.job_id, start_time=start_time or now_text()
        ).to_dict()

    def complete(self, start_time: str | None = None) -> None:
        self.entry = {
            **self.entry,
            **NodeStatus(
                state=COMPLETE,
                job_id=self.job_id,
                start_time=start_time or self.entry.get("startTime"),
                completion_time=now_text(),
            ).to_dict(),
            "containers": 0,
        }

    def ended(self) -> bool:
        """The Hub marks the trace finished once its last events are routed: only then are
        its counters final (``job.stopped`` comes earlier)."""
        job = self.job
        return job is not None and job.stopped and job.trace.status.state.finished

    def set_cri(self, error: str | None) -> bool:
        """Note the CRI's state; True when an outage began or ended."""
        was_down = self.cri_error is not None
        self.cri_error = error
        down = error is not None
        if down and not was_down:
            self.cri_outages += 1
        return down != was_down

    def refresh(
        self, stats: JobStats | None, ended: bool, live_ns: frozenset[int] = frozenset()
    ) -> None:
        """Recompute the entry from the job (counters, containers, state, last error: an
        unreadable CRI first, else the job's); ``ended``: :meth:`ended` as it was before
        ``stats`` were read; ``live_ns``: pid namespaces with kernel filters now (after an
        error, a container counts only if this job's filters on its namespace are in)."""
        job = self.job
        if job is None or self.finished:
            return
        entry = dict(self.entry)
        containers = 0 if job.stopped else len(job.monitored_hosts())
        if job.errors and stats is not None:  # some container may have stayed untraced
            containers = min(containers, len({k.pid_ns for k in stats.keys} & live_ns))
        entry["containers"] = containers
        if stats is not None:
            entry["matched"] = stats.matched
            entry["delivered"] = stats.delivered
            entry["dropped"] = stats.dropped
            entry["sampledOut"] = stats.sampled_out
        entry["errors"] = job.errors + self.cri_outages
        last = f"CRI unreadable: {self.cri_error}" if self.cri_error else job.error
        if last:
            entry["lastError"] = last
        elif self.cri_outages:  # the CRI answers again: its error is over
            entry["lastError"] = ""
        if ended:
            failed = job.trace.status.state is TraceState.FAILED
            entry["state"] = FAILED if failed else COMPLETE
            entry["completionTime"] = now_text()
            entry["containers"] = 0
        elif entry.get("state") == PENDING:
            entry["state"] = RUNNING
        self.entry = entry

    def reportable(self) -> bool:
        """Whether this node has something to say: it traces (or traced) a container, or
        something went wrong. Nodes without matching pods stay out of the status."""
        e = self.entry
        return (
            self.written is not None
            or self.stand_in
            or int(e.get("containers", 0)) > 0
            or int(e.get("matched", 0)) > 0
            or int(e.get("errors", 0)) > 0
            or e.get("state") == FAILED
        )
