"""The ``/metrics`` text, fast: the syscall families (one counter, one
histogram and optionally swoll's two per label set) are written straight
into the Prometheus text format (0.0.4), each label set escaped once;
prometheus_client formats the few health families. With 10,000 series that
is ~170,000 lines, which prometheus_client's generic encoder formats one
sample object at a time (validating and escaping every label of every
line), an order of magnitude slower.

:class:`MetricsExporter` renders one scrape; :func:`render_syscalls` is the
pure formatter (tests parse its output with prometheus_client's parser)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import accumulate
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.registry import Collector

from syshub.metrics.labels import ContainerMetrics
from syshub.metrics.prometheus import (
    COUNT_HELP,
    DURATION_HELP,
    EXPORT_BITS,
    LABELS,
    SCRAPE_HELP,
    SWOLL_COUNT_HELP,
    SWOLL_LABELS,
    SWOLL_TIME_HELP,
    StatsSource,
    SyscallCollector,
    le_of,
    merge_rows,
)
from syshub.metrics.report import MetricsReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LE = [f'le="{le_of(b)}"' for b in EXPORT_BITS]


@lru_cache(maxsize=65536)
def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_esc(v)}"' for n, v in zip(names, values, strict=True))


def _num(x: float) -> str:
    """A sample value as Prometheus writes it (integers without ``.0``)."""
    if isinstance(x, int) or x.is_integer():
        return str(int(x))
    return repr(x)


def render_syscalls(report: MetricsReport, swoll_names: bool = False) -> str:
    """``syshub_syscalls_total`` and ``syshub_syscall_duration_seconds`` (and
    swoll's two families) of one report, in the text format."""
    merged = merge_rows(report)
    counts: list[str] = [
        f"# HELP syshub_syscalls_total {COUNT_HELP}\n",
        "# TYPE syshub_syscalls_total counter\n",
    ]
    hist: list[str] = [
        f"# HELP syshub_syscall_duration_seconds {DURATION_HELP}\n",
        "# TYPE syshub_syscall_duration_seconds histogram\n",
    ]
    swoll_c: list[str] = []
    swoll_t: list[str] = []
    idx = EXPORT_BITS
    timed = report.latency
    for k, (count, total_ns, buckets) in merged.items():
        ls = _labels(LABELS, k)
        counts.append(f"syshub_syscalls_total{{{ls}}} {count}\n")
        if swoll_names:
            sl = _labels(SWOLL_LABELS, (*k[:3], f"sys_{k[3]}", *k[4:]))
            swoll_c.append(f"swoll_node_metrics_syscall_count{{{sl}}} {count}\n")
            swoll_t.append(f"swoll_node_metrics_syscall_time{{{sl}}} {total_ns}\n")
        if not timed:
            continue
        # intent: the histogram holds the timed calls (+Inf = _count =
        # sum of the kernel buckets); a call counted without a duration is in
        # syshub_syscalls_total only, never in a latency bucket
        cum = list(accumulate(buckets)) or [0]
        top = len(cum) - 1
        prefix = f"syshub_syscall_duration_seconds_bucket{{{ls},"
        hist.append(
            "".join(
                [f"{prefix}{le}}} {cum[min(b, top)]}\n" for b, le in zip(idx, _LE, strict=True)]
            )
            + f'{prefix}le="+Inf"}} {cum[-1]}\n'
            f"syshub_syscall_duration_seconds_sum{{{ls}}} {_num(total_ns / 1e9)}\n"
            f"syshub_syscall_duration_seconds_count{{{ls}}} {cum[-1]}\n"
        )
    out = counts + hist if timed else counts
    if swoll_names:
        out += [
            f"# HELP swoll_node_metrics_syscall_count {SWOLL_COUNT_HELP}\n",
            "# TYPE swoll_node_metrics_syscall_count untyped\n",
            *swoll_c,
        ]
        if timed:
            out += [
                f"# HELP swoll_node_metrics_syscall_time {SWOLL_TIME_HELP}\n",
                "# TYPE swoll_node_metrics_syscall_time untyped\n",
                *swoll_t,
            ]
    return "".join(out)


class _Families(Collector):
    def __init__(self, families: Iterable[Any]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Any]:
        return iter(self._families)


class MetricsExporter:
    """One ``/metrics`` document per :meth:`render`: the report of ``source``
    (read at scrape time), its syscall families, health (with ``hub``: the
    trace pipeline's events and drops per reason; ``streams``: the agent's
    stream drops) and the previous scrape's duration."""

    def __init__(
        self,
        source: ContainerMetrics,
        *,
        hub: StatsSource | None = None,
        streams: Callable[[], Iterable[Any]] | None = None,
        swoll_names: bool = False,
    ) -> None:
        self.collector = SyscallCollector(source, hub=hub, streams=streams, swoll_names=swoll_names)
        self.last_scrape_seconds = 0.0
        self.scrapes = 0

    def render(self) -> bytes:
        t0 = time.perf_counter()
        report = self.collector.source.report()
        text = render_syscalls(report, self.collector.swoll_names)
        health = generate_latest(_Families(self.collector.health(report)))
        scrape = (
            f"# HELP syshub_scrape_duration_seconds {SCRAPE_HELP}\n"
            "# TYPE syshub_scrape_duration_seconds gauge\n"
            f"syshub_scrape_duration_seconds {self.last_scrape_seconds!r}\n"
        )
        body = text.encode() + health + scrape.encode()
        self.last_scrape_seconds = time.perf_counter() - t0
        self.scrapes += 1
        return body
