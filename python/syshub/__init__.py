"""syshub: strace for a whole cluster. Per-container and per-pod syscall
tracing with eBPF: typed, decoded events and exact counters.

Everything public imports from here::

    from syshub import Hub, HubConfig, Trace, load_traces

``syshub._native`` is private: :class:`Probe` is its public, typed face."""

from __future__ import annotations

from syshub.errors import (
    CriError,
    HubError,
    KubernetesError,
    ProbeError,
    SelectorError,
    SyscallNameError,
    SyshubError,
    TopologyError,
    TraceSpecError,
)
from syshub.hub import (
    Hub,
    HubConfig,
    HubStats,
    Job,
    JobContext,
    JobKeyStats,
    JobList,
    JobStats,
    Overflow,
    SubscriberStats,
    Subscription,
    Target,
    TraceEvent,
)
from syshub.probe import (
    Batch,
    Event,
    FilterInfo,
    KernelCounters,
    KeyStats,
    KeyTotals,
    Probe,
    ProbeStats,
    ReaderCounters,
)
from syshub.spec.trace import Trace, TraceState, TraceStatus, load_traces

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "CriError",
    "Event",
    "FilterInfo",
    "Hub",
    "HubConfig",
    "HubError",
    "HubStats",
    "Job",
    "JobContext",
    "JobKeyStats",
    "JobList",
    "JobStats",
    "KernelCounters",
    "KeyStats",
    "KeyTotals",
    "KubernetesError",
    "Overflow",
    "Probe",
    "ProbeError",
    "ProbeStats",
    "ReaderCounters",
    "SelectorError",
    "SubscriberStats",
    "Subscription",
    "SyscallNameError",
    "SyshubError",
    "Target",
    "TopologyError",
    "Trace",
    "TraceEvent",
    "TraceSpecError",
    "TraceState",
    "TraceStatus",
    "__version__",
    "load_traces",
]
