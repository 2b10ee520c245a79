"""The agent's traces, keyed by (namespace, name): each is a Trace and the
Hub job that runs it. A trace that ended (its duration, or the Hub stopped)
stays listed as Complete until it is deleted; creating a trace under the name
of a running one is ALREADY_EXISTS."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from syshub.agent.requests import DEFAULT_NAMESPACE, RequestError
from syshub.errors import HubError
from syshub.hub import Hub, Job, Target
from syshub.hub.plan import CaptureSizes
from syshub.spec.trace import Trace

Key = tuple[str, str]


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

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._entries: dict[Key, TraceEntry] = {}

    def create(
        self,
        trace: Trace,
        target: Target | None = None,
        capture: CaptureSizes | None = None,
        wait: float = 0.0,
    ) -> TraceEntry:
        """Run ``trace`` on the Hub; waits up to ``wait`` s for its filters."""
        key = trace.key
        job = Job(trace, target=target or Target(), capture=capture)
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
        if wait > 0:
            job.wait_applied(wait)
        return entry

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
        """Stop the trace's job (its streams end) and forget it."""
        entry = self.get(key)
        if entry.running:
            self.hub.delete_trace(entry.job)
        with self._lock:
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
        return entry
