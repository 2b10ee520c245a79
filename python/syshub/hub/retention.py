"""Forgetting finished jobs. The Hub keeps a stopped job (its Trace, its
per-key contexts, its ended subscriptions) so that its final counters stay in
:meth:`~syshub.Hub.stats`; an owner that creates and deletes traces for a
long time (the agent) tells the Hub when it no longer needs them, else every
trace ever run stays in memory (about 11 KiB per job plus ~140 B per
container and syscall it traced, measured in the soak)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syshub.hub.service import Hub


def forget_job(hub: Hub, job_id: str) -> bool:
    """Drop a stopped job and what the Hub kept for it (its stats go too).
    False, and nothing done, when the job is unknown, runs, or still drains."""
    with hub._lock:
        job = hub._jobs.get(job_id)
        if job is None or not job.stopped:
            return False
        if any(c.job is job for ctxs in hub._draining.values() for c in ctxs):
            return False
        del hub._jobs[job_id]
        hub._contexts.pop(job_id, None)
        hub._retired.pop(job_id, None)
        hub._holds.pop(job_id, None)
        hub._scopes.pop(job_id, None)
        hub._ended_subs.pop(job_id, None)
        return True
