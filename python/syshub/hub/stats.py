"""The Hub's counters as frozen values. For every job, on every key and in
total: ``matched == delivered + dropped + sampled_out``, where ``delivered``
counts the calls routed to the job and ``dropped`` the ones the kernel could
not hand over (ring full, or the key over its fair share of the ring:
:attr:`HubStats.over_share`). What a subscriber's own full queue lost is in its
:class:`SubscriberStats`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from syshub.probe import ProbeStats


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    name: str
    delivered: int
    """Events handed to the consumer."""
    dropped: int
    """Events lost to this subscriber's full queue."""
    queued: int


@dataclass(frozen=True, slots=True)
class JobKeyStats:
    """One job on one kernel key (pid namespace or scope, syscall nr)."""

    pid_ns: int
    nr: int
    matched: int
    delivered: int
    dropped: int
    sampled_out: int
    over_share: int = 0
    """Of ``dropped``: the drops the kernel counted on this key as over its
    fair share of the ring. The kernel tells the reason per key, not per
    call: the key's over-share drops are given to the job's contexts on the
    key in order, each at most its own ``dropped`` (exact for a job alone on
    its key; a bound when several jobs with other sample rates share it)."""


@dataclass(frozen=True, slots=True)
class JobStats:
    job_id: str
    state: str
    matched: int
    delivered: int
    dropped: int
    sampled_out: int
    keys: tuple[JobKeyStats, ...]
    subscribers: tuple[SubscriberStats, ...]
    over_share: int = 0
    """Of ``dropped``: over the keys' fair share (:attr:`JobKeyStats.over_share`)."""

    @staticmethod
    def of(
        job_id: str,
        state: str,
        keys: tuple[JobKeyStats, ...],
        subscribers: tuple[SubscriberStats, ...],
    ) -> JobStats:
        return JobStats(
            job_id,
            state,
            matched=sum(k.matched for k in keys),
            delivered=sum(k.delivered for k in keys),
            dropped=sum(k.dropped for k in keys),
            sampled_out=sum(k.sampled_out for k in keys),
            keys=keys,
            subscribers=subscribers,
            over_share=sum(k.over_share for k in keys),
        )

    def with_over_share(self, per_key: Mapping[tuple[int, int], int]) -> JobStats:
        """These stats with each key's over-share drops (``per_key``: the
        kernel's, per (pid_ns, nr)) split over the job's contexts."""
        left = dict(per_key)
        keys = []
        for k in self.keys:
            n = min(k.dropped, left.get((k.pid_ns, k.nr), 0))
            if n:
                left[(k.pid_ns, k.nr)] -= n
            keys.append(replace(k, over_share=n))
        return JobStats.of(self.job_id, self.state, tuple(keys), self.subscribers)


@dataclass(frozen=True, slots=True)
class HubStats:
    probe: ProbeStats | None
    """The kernel probe's own per-key counters (None without a probe)."""
    jobs: Mapping[str, JobStats]
    routed: int
    """Events routed to at least one job."""
    unrouted: int
    """Events no live job wanted (their key was released while in flight)."""
    reader_errors: int = 0
    """Failed polls or routes of the hub's reader loop (it keeps going)."""
    lost: int = 0
    """Events of batches that could not be routed (counted, never silent)."""

    def __post_init__(self) -> None:
        # Each job's drops get their over-share part from the probe's keys.
        if self.probe is None or not self.probe.total.over_share:
            return
        per_key: dict[tuple[int, int], int] = {}
        for k in self.probe.keys:
            if k.over_share:
                per_key[(k.pid_ns, k.nr)] = per_key.get((k.pid_ns, k.nr), 0) + k.over_share
        jobs = {j: js.with_over_share(per_key) for j, js in self.jobs.items()}
        object.__setattr__(self, "jobs", jobs)

    @property
    def decode_errors(self) -> int:
        return self.probe.reader.decode_errors if self.probe is not None else 0

    @property
    def over_share(self) -> int:
        """Calls the kernel dropped because their key held more than its fair
        share of the ring (part of the drops; per key in ``probe.keys``). The
        kernel tells the reason per key, not per call: a job's share of it is
        :attr:`JobStats.over_share` (see :attr:`JobKeyStats.over_share`)."""
        return self.probe.total.over_share if self.probe is not None else 0
