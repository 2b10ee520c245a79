"""syshub: strace for a whole cluster. Per-container and per-pod syscall
tracing with eBPF: typed, decoded events and exact counters.

Everything public imports from here::

    from syshub import Hub, HubConfig, Trace, load_traces

``syshub._native`` is private: :class:`Probe` is its public, typed face."""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing (re, enum) costs start-up time
# during which Ctrl-C would be a traceback; mypy reads this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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

# Loaded on first use (PEP 562): the command line installs its signal
# handling before the heavier modules (pydantic, the native probe) load, so
# Ctrl-C during start-up is one line, never a traceback.
_EXPORTS = {
    "Batch": "syshub.probe",
    "CriError": "syshub.errors",
    "Event": "syshub.probe",
    "FilterInfo": "syshub.probe",
    "Hub": "syshub.hub",
    "HubConfig": "syshub.hub",
    "HubError": "syshub.errors",
    "HubStats": "syshub.hub",
    "Job": "syshub.hub",
    "JobContext": "syshub.hub",
    "JobKeyStats": "syshub.hub",
    "JobList": "syshub.hub",
    "JobStats": "syshub.hub",
    "KernelCounters": "syshub.probe",
    "KeyStats": "syshub.probe",
    "KeyTotals": "syshub.probe",
    "KubernetesError": "syshub.errors",
    "Overflow": "syshub.hub",
    "Probe": "syshub.probe",
    "ProbeError": "syshub.errors",
    "ProbeStats": "syshub.probe",
    "ReaderCounters": "syshub.probe",
    "SelectorError": "syshub.errors",
    "SubscriberStats": "syshub.hub",
    "Subscription": "syshub.hub",
    "SyscallNameError": "syshub.errors",
    "SyshubError": "syshub.errors",
    "Target": "syshub.hub",
    "TopologyError": "syshub.errors",
    "Trace": "syshub.spec.trace",
    "TraceEvent": "syshub.hub",
    "TraceSpecError": "syshub.errors",
    "TraceState": "syshub.spec.trace",
    "TraceStatus": "syshub.spec.trace",
    "load_traces": "syshub.spec.trace",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'syshub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
