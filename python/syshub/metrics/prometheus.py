"""A prometheus_client Collector that reads the kernel metrics maps at scrape
time (no Python work per syscall):

* ``syshub_syscalls_total`` (counter) and ``syshub_syscall_duration_seconds``
  (histogram, from the kernel's log2 buckets) with labels namespace, pod,
  container, syscall, class, group, errno (``OK`` for success);
* health: the metrics map's use, overflow and read time, the scrape time,
  and with a Hub its events and drops per reason;
* with ``swoll_names=True`` also ``swoll_node_metrics_syscall_count`` and
  ``swoll_node_metrics_syscall_time`` (total ns) with swoll's labels
  (namespace, pod, container, syscall as ``sys_<name>``, class, group, err).

Series of the same labels (for example unlabelled host namespaces) are
summed; series of stopped containers are pruned by :class:`ContainerMetrics`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from syshub.metrics.kernel import ring_use
from syshub.metrics.labels import ContainerMetrics
from syshub.metrics.report import MetricsReport

LABELS = ("namespace", "pod", "container", "syscall", "class", "group", "errno")
SWOLL_LABELS = ("namespace", "pod", "container", "syscall", "class", "group", "err")

#: Exported histogram bounds: every kernel bucket bound from 2**6 ns (64 ns)
#: to 2**36 ns (~69 s), then +Inf. The kernel's bucket b holds calls of
#: 2**(b-1) .. 2**b - 1 ns, so the bucket ``le`` of bound b is
#: ``(2**b - 1) ns`` (in seconds): cumulative and exact, no call is counted on
#: the wrong side of a bound. Calls shorter than 64 ns are all in the first
#: bucket, calls of ~69 s and more only in +Inf (the kernel's last buckets,
#: up to ~4.6 min and the open-ended one, hold so few calls that 31 bounds per
#: series keep a 10,000-series scrape in bounds); _sum and _count are exact.
EXPORT_BITS: tuple[int, ...] = tuple(range(6, 37))
_LE = tuple(repr(((1 << b) - 1) / 1e9) for b in EXPORT_BITS)


def le_of(bits: int) -> str:
    """The ``le`` label of kernel bound ``bits``: ``(2**bits - 1)`` ns in seconds."""
    return repr(((1 << bits) - 1) / 1e9)


class StatsSource(Protocol):
    """What the collector reads of a Hub: ``stats()``."""

    def stats(self) -> Any: ...


def histogram_buckets(buckets: tuple[int, ...] | list[int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets (le in seconds) from kernel log2 buckets:
    le=(2**k - 1) ns counts the kernel buckets 0..k (every call shorter than
    2**k ns); +Inf counts them all."""
    out: list[tuple[str, float]] = []
    acc = 0
    b = 0
    n = len(buckets)
    for bits, le in zip(EXPORT_BITS, _LE, strict=True):
        while b <= bits and b < n:
            acc += buckets[b]
            b += 1
        out.append((le, float(acc)))
    out.append(("+Inf", float(sum(buckets))))
    return out


COUNT_HELP = "Syscalls that returned, per container and errno"
DURATION_HELP = "Syscall latency from entry to exit (kernel log2 buckets)"
SWOLL_COUNT_HELP = "The count of sys-function calls"
SWOLL_TIME_HELP = "The total time spent in sys-function calls (ns)"
SCRAPE_HELP = "Time the previous scrape took to read, label and render the metrics (0 at first)"


def merge_rows(report: MetricsReport) -> dict[tuple[str, ...], tuple[int, int, list[int]]]:
    """Rows summed per label set (namespace, pod, container, syscall, class,
    group, errno): (count, total ns, kernel buckets)."""
    merged: dict[tuple[str, ...], tuple[int, int, list[int]]] = {}
    for r in report.rows:
        k = (r.namespace, r.pod, r.container, r.syscall, r.klass, r.group, r.error)
        have = merged.get(k)
        if have is None:
            merged[k] = (r.count, r.total_ns, list(r.buckets))
        else:
            acc = have[2]
            for i, x in enumerate(r.buckets):
                acc[i] += x
            merged[k] = (have[0] + r.count, have[1] + r.total_ns, acc)
    return merged


class SyscallCollector(Collector):
    """Collects one :class:`ContainerMetrics` (and optionally a Hub's health)
    per scrape. Register it in a ``CollectorRegistry``."""

    def __init__(
        self,
        source: ContainerMetrics,
        *,
        hub: StatsSource | None = None,
        streams: Callable[[], Iterable[Any]] | None = None,
        swoll_names: bool = False,
    ) -> None:
        self.source = source
        self.hub = hub
        self.streams = streams
        self.swoll_names = swoll_names
        self.last_scrape_seconds = 0.0
        self.scrapes = 0

    def describe(self) -> Iterable[Metric]:
        # intent: no describe-time read of the kernel (registering stays cheap)
        return []

    def collect(self) -> Iterator[Metric]:
        t0 = time.perf_counter()
        report = self.source.report()
        yield from self._syscalls(report)
        yield from self.health(report)
        g = GaugeMetricFamily("syshub_scrape_duration_seconds", SCRAPE_HELP)
        g.add_metric([], self.last_scrape_seconds)
        self.scrapes += 1
        self.last_scrape_seconds = time.perf_counter() - t0
        yield g

    def health(self, report: MetricsReport) -> Iterator[Metric]:
        """The health families: the metrics map's use and, with a Hub, the
        trace pipeline's events and drops."""
        yield from self._health(report)
        if self.hub is not None:
            yield from hub_health(self.hub.stats(), self._stream_drops())
            yield from ring_health()

    def _stream_drops(self) -> int | None:
        if self.streams is None:
            return None
        return sum(int(getattr(s, "dropped", 0)) for s in self.streams())

    def _syscalls(self, report: MetricsReport) -> Iterator[Metric]:
        total = CounterMetricFamily("syshub_syscalls", COUNT_HELP, labels=LABELS)
        duration = HistogramMetricFamily(
            "syshub_syscall_duration_seconds", DURATION_HELP, labels=LABELS
        )
        swoll_count = UnknownMetricFamily(
            "swoll_node_metrics_syscall_count", SWOLL_COUNT_HELP, labels=SWOLL_LABELS
        )
        swoll_time = UnknownMetricFamily(
            "swoll_node_metrics_syscall_time", SWOLL_TIME_HELP, labels=SWOLL_LABELS
        )
        timed = report.latency
        for k, (count, total_ns, buckets) in merge_rows(report).items():
            labels = list(k)
            total.add_metric(labels, float(count))
            if timed:
                duration.add_metric(labels, histogram_buckets(buckets), total_ns / 1e9)
            if self.swoll_names:
                swoll = [*k[:3], f"sys_{k[3]}", *k[4:]]
                swoll_count.add_metric(swoll, float(count))
                swoll_time.add_metric(swoll, float(total_ns))
        yield total
        # intent: count-only metrics (latency off) have no durations: the
        # duration families are left out rather than exported as zeros
        if timed:
            yield duration
        if self.swoll_names:
            yield swoll_count
            if timed:
                yield swoll_time

    def _health(self, report: MetricsReport) -> Iterator[Metric]:
        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            return c

        yield gauge("syshub_metrics_series", "Series in the kernel metrics map", report.entries)
        yield gauge(
            "syshub_metrics_series_max", "Capacity of the kernel metrics map", report.max_entries
        )
        yield counter(
            "syshub_metrics_overflow_calls",
            "Syscalls counted outside any series because the metrics map was full",
            report.overflow.count,
        )
        yield counter(
            "syshub_metrics_unmeasured_calls",
            "Syscall entries not timed: no per-task slot in the kernel",
            report.nomem,
        )
        yield counter(
            "syshub_metrics_untimed_calls",
            "Syscalls counted without a duration (in flight when metrics started, or no slot)",
            report.untimed,
        )
        yield gauge(
            "syshub_metrics_latency",
            "1 when syscall latencies are measured (histogram exported), 0 for counts only",
            1.0 if report.latency else 0.0,
        )
        yield counter(
            "syshub_metrics_pruned_series",
            "Series deleted because their containers stopped",
            self.source.pruned,
        )
        yield gauge(
            "syshub_metrics_read_seconds",
            "Time reading the kernel metrics map took",
            report.read_seconds,
        )


def ring_health() -> Iterator[Metric]:
    """The trace probe's event ring: bytes pending (written by the kernel, not
    yet read) and capacity, summed over the process's rings, and the fullest
    ring's fill (0..1). Nothing without a probe or when unreadable."""
    try:
        rings = ring_use()
    except OSError:
        return
    if not rings:
        return
    yield GaugeMetricFamily(
        "syshub_ring_pending_bytes",
        "Bytes in the trace ring buffer written by the kernel and not yet read",
        value=float(sum(r.pending for r in rings)),
    )
    yield GaugeMetricFamily(
        "syshub_ring_capacity_bytes",
        "Size of the trace ring buffer",
        value=float(sum(r.capacity for r in rings)),
    )
    yield GaugeMetricFamily(
        "syshub_ring_use_ratio",
        "Fill of the fullest trace ring buffer at scrape time (0..1)",
        value=max(r.fraction for r in rings),
    )


def hub_health(stats: Any, stream_drops: int | None = None) -> Iterator[Metric]:
    """Health of the trace pipeline from ``Hub.stats()``: events per stage and
    drops per reason."""
    events = CounterMetricFamily(
        "syshub_events", "Traced syscalls per stage of the pipeline", labels=("stage",)
    )
    dropped = CounterMetricFamily(
        "syshub_dropped", "Traced syscalls lost, per reason (all counted)", labels=("reason",)
    )
    probe = getattr(stats, "probe", None)
    if probe is not None:
        k = probe.kernel
        events.add_metric(["matched"], float(k.matched))
        events.add_metric(["sampled_out"], float(k.sampled_out))
        events.add_metric(["emitted"], float(k.emitted))
        events.add_metric(["read"], float(probe.reader.records))
        over_share = int(getattr(k, "over_share", 0))
        dropped.add_metric(["ring_full"], float(k.dropped - k.nomem - over_share))
        dropped.add_metric(["over_share"], float(over_share))
        dropped.add_metric(["nomem"], float(k.nomem))
        dropped.add_metric(["decode_error"], float(probe.reader.decode_errors))
    events.add_metric(["routed"], float(stats.routed))
    dropped.add_metric(["unrouted"], float(stats.unrouted))
    dropped.add_metric(["lost"], float(stats.lost))
    sub_drops = sum(s.dropped for j in stats.jobs.values() for s in j.subscribers)
    dropped.add_metric(["subscriber_queue"], float(sub_drops))
    if stream_drops is not None:
        dropped.add_metric(["stream"], float(stream_drops))
    yield events
    yield dropped
    jobs = GaugeMetricFamily(
        "syshub_jobs", "Trace jobs known to the Hub, per state", labels=("state",)
    )
    states: dict[str, int] = {}
    for j in stats.jobs.values():
        states[j.state] = states.get(j.state, 0) + 1
    for state, n in sorted(states.items()):
        jobs.add_metric([state], float(n))
    yield jobs
    if probe is not None:
        yield GaugeMetricFamily(
            "syshub_filter_keys",
            "Kernel filter keys the probe has counters for",
            value=len(probe.keys),
        )
