"""syshub: strace for a whole cluster. Per-container and per-pod syscall
tracing with eBPF: typed, decoded events and exact counters.

Import from here; ``syshub._native`` is private."""

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

__version__ = "0.1.0"

__all__ = [
    "CriError",
    "HubError",
    "KubernetesError",
    "ProbeError",
    "SelectorError",
    "SyscallNameError",
    "SyshubError",
    "TopologyError",
    "TraceSpecError",
    "__version__",
]
