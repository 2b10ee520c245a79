"""Syscall metrics counted in the kernel: per container (pid namespace),
syscall and errno, call counts, total time and log2 latency histograms.

* :class:`Metrics`: the kernel program (``mode="node"`` or ``"containers"``),
  :meth:`Metrics.snapshot` -> :class:`MetricsSnapshot` of :class:`MetricsRow`;
* :class:`ContainerMetrics`: labels (namespace, pod, container) and the
  containers-mode namespace set from a Hub's or an observer's topology;
  :meth:`ContainerMetrics.report` -> :class:`MetricsReport`;
* :mod:`syshub.metrics.prometheus` (a prometheus_client Collector) and
  :mod:`syshub.metrics.http` (``/metrics`` and the agent component) need
  ``pip install 'syshub[metrics]'``.
"""

from __future__ import annotations

from syshub.metrics.kernel import (
    BUCKETS,
    DEFAULT_MAX_ENTRIES,
    BareHooks,
    Metrics,
    MetricsRow,
    MetricsSnapshot,
    Mode,
    Overflow,
    RingUse,
    bucket_of,
    bucket_upper_ns,
    percentile_ns,
    ring_use,
)
from syshub.metrics.labels import ContainerMetrics
from syshub.metrics.report import MetricsReport, SeriesRow, delta, merge

__all__ = [
    "BUCKETS",
    "DEFAULT_MAX_ENTRIES",
    "BareHooks",
    "ContainerMetrics",
    "Metrics",
    "MetricsReport",
    "MetricsRow",
    "MetricsSnapshot",
    "Mode",
    "Overflow",
    "RingUse",
    "SeriesRow",
    "bucket_of",
    "bucket_upper_ns",
    "delta",
    "merge",
    "percentile_ns",
    "ring_use",
]
