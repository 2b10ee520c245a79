"""The Hub's counters as frozen values. For every job, on every key and in
total: ``matched == delivered + dropped + sampled_out``, where ``delivered``
counts the calls routed to the job and ``dropped`` the ones the kernel could
not hand over (ring full, or the key over its fair share of the ring:
:attr:`HubStats.over_share`). What a subscriber's own full queue lost is in its
:class:`SubscriberStats`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
        )


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

    @property
    def decode_errors(self) -> int:
        return self.probe.reader.decode_errors if self.probe is not None else 0

    @property
    def over_share(self) -> int:
        """Calls the kernel dropped because their key held more than its fair
        share of the ring (part of the drops; per key in ``probe.keys``). The
        kernel tells the reason per key, not per call, so a job's ``dropped``
        is not split by reason."""
        return self.probe.total.over_share if self.probe is not None else 0
