"""The Hub's batch mode: subscriptions that receive :class:`EventChunk` s
(a poll's batch, the selected index ranges, the containers) instead of one
:class:`~syshub.hub.events.TraceEvent` per event. The CLI's output and the
agent's streams encode chunks in Rust (``chunk.to_json()``, ``to_text()``,
``to_proto()``), so no Python object is made per event.

:class:`BatchSubscribing` is a mixin of :class:`~syshub.hub.service.Hub`;
the queues are :class:`BatchSubscription` s in the router's tables, so the
Hub's accounting (``Hub.stats()``), ``delete_trace`` and ``stop`` treat them
as any subscription.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from syshub.hub.jobs import Job
from syshub.hub.router import Router, path_key
from syshub.hub.subscriptions import BatchSubscription, EventChunk, Overflow, Subscription

if TYPE_CHECKING:
    from syshub.spec.trace import Trace

__all__ = ["BatchSubscribing", "BatchSubscription", "EventChunk"]


def _batched(sub: Subscription) -> BatchSubscription:
    assert isinstance(sub, BatchSubscription)
    return sub


class BatchSubscribing:
    """Batch-mode subscriptions of a Hub (``self._router``, ``self.job``
    and ``self._job_id`` are the Hub's)."""

    if TYPE_CHECKING:
        _router: Router

        def job(self, job_id: str) -> Job: ...

        def _job_id(self, target: Trace | Job | str) -> str: ...

    def subscribe_batches(
        self,
        target: Trace | Job | str,
        *,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> BatchSubscription:
        """Like ``Hub.subscribe`` (a :class:`Job` not yet run may be
        subscribed to), but the queue holds chunks; ``maxsize`` counts events
        and drops are counted per event."""
        job_id = target.job_id if isinstance(target, Job) else self.job(self._job_id(target)).job_id
        return _batched(
            self._router.subscribe("job_subs", job_id, job_id, maxsize, overflow, batch=True)
        )

    def subscribe_path_batches(
        self,
        path: Iterable[str] = (),
        *,
        name: str = "",
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> BatchSubscription:
        """Like ``Hub.subscribe_path``: chunks of the events below a
        (namespace, pod, container, syscall) prefix."""
        key = path_key(path)
        return _batched(
            self._router.subscribe(
                "path_subs", key, name or "/".join(key), maxsize, overflow, batch=True
            )
        )
