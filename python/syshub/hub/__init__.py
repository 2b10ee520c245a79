"""The Hub: one kernel probe, many trace jobs, exact kernel filters, routing.

Layers: :mod:`~syshub.hub.plan` (pure filter planning), :mod:`~syshub.hub.jobs`
(jobs as data and selection), :mod:`~syshub.hub.kernel` (filters, scopes,
namespace holds), :mod:`~syshub.hub.router` (the hot path),
:mod:`~syshub.hub.subscriptions` (bounded queues) and
:mod:`~syshub.hub.service` (lifecycle and threads)."""

from __future__ import annotations

from syshub.hub.config import HubConfig
from syshub.hub.events import TraceEvent
from syshub.hub.jobs import Job, JobContext, JobList, Target, TargetKind
from syshub.hub.service import Hub
from syshub.hub.stats import HubStats, JobKeyStats, JobStats, SubscriberStats
from syshub.hub.subscriptions import Overflow, Subscription

__all__ = [
    "Hub",
    "HubConfig",
    "HubStats",
    "Job",
    "JobContext",
    "JobKeyStats",
    "JobList",
    "JobStats",
    "Overflow",
    "SubscriberStats",
    "Subscription",
    "Target",
    "TargetKind",
    "TraceEvent",
]
