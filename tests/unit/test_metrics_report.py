"""Pure parts of syshub.metrics: buckets, percentiles, reports, rates, the
Prometheus exposition of a report, the /metrics address, `syshub top`'s
grouping and keys. No kernel access."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from syshub.cli.top_cmd import GROUPS, View, aggregate, line_doc, on_key
from syshub.metrics import (
    BUCKETS,
    MetricsReport,
    Overflow,
    SeriesRow,
    bucket_of,
    delta,
    merge,
    percentile_ns,
)
from syshub.metrics.exposition import render_syscalls
from syshub.metrics.http import parse_addr
from syshub.metrics.prometheus import EXPORT_BITS, SyscallCollector, histogram_buckets, le_of


def _hist(**at: int) -> tuple[int, ...]:
    h = [0] * BUCKETS
    for k, v in at.items():
        h[int(k[1:])] = v
    return tuple(h)


def _row(
    pid_ns: int = 4026530000,
    syscall: str = "openat",
    errno: int = 0,
    count: int = 3,
    hist: tuple[int, ...] | None = None,
    container: str = "web",
) -> SeriesRow:
    return SeriesRow(
        namespace="default",
        pod="web-1",
        container=container,
        pid_ns=pid_ns,
        nr=257 if syscall == "openat" else 110,
        syscall=syscall,
        klass="FileSystem",
        group="Files",
        errno=errno,
        error="OK" if errno == 0 else "ENOENT",
        count=count,
        total_ns=count * 1000,
        buckets=hist if hist is not None else _hist(b10=count),
    )


def _report(*rows: SeriesRow, overflow: int = 0, at: float = 100.0) -> MetricsReport:
    return MetricsReport(
        node="n1",
        mode="node",
        taken_at=at,
        rows=rows,
        overflow=Overflow(overflow, 0, tuple([0] * BUCKETS)),
        nomem=0,
        max_entries=16384,
        read_seconds=0.001,
    )


def test_bucket_of_is_significant_bits() -> None:
    assert [bucket_of(x) for x in (0, 1, 2, 3, 4, 1023, 1024)] == [0, 1, 2, 2, 3, 10, 11]
    assert bucket_of(3_000_000) == 22
    assert bucket_of(1 << 62) == BUCKETS - 1


def test_percentile_interpolates_inside_a_bucket() -> None:
    h = _hist(b11=100)  # every call in [1024, 2048) ns
    p50 = percentile_ns(h, 0.5)
    assert p50 is not None and 1024 <= p50 < 2048
    assert percentile_ns(h, 1.0) == pytest.approx(2048.0)
    assert percentile_ns([0] * BUCKETS, 0.5) is None
    h2 = _hist(b5=90, b20=10)
    p99 = percentile_ns(h2, 0.99)
    p50b = percentile_ns(h2, 0.5)
    assert p99 is not None and (1 << 19) <= p99 < (1 << 20)
    assert p50b is not None and p50b < 32


def test_histogram_buckets_are_cumulative_up_to_inf() -> None:
    h = _hist(b3=1, b10=2, b11=4, b30=8, b39=16)
    out = histogram_buckets(h)
    assert out[-1] == ("+Inf", 31.0)
    les = [float(le) for le, _ in out[:-1]]
    # every kernel bound from 2**6 to 2**36 ns; le = 2**b - 1 ns (bucket b
    # holds calls up to 2**b - 1 ns)
    assert tuple(range(6, 37)) == EXPORT_BITS
    assert les == [((1 << b) - 1) / 1e9 for b in EXPORT_BITS]
    counts = dict(out)
    assert [c for _, c in out] == sorted(c for _, c in out)
    # le=63 ns: buckets 0..6 (bucket 3: calls of 4..7 ns)
    assert out[0] == ("6.3e-08", 1.0)
    assert counts[le_of(9)] == 1.0  # bucket 10 (512..1023 ns) not yet
    assert counts[le_of(10)] == 3.0  # le=1023 ns: buckets 0..10
    assert counts[le_of(11)] == 7.0
    assert counts[le_of(36)] == 15.0  # bucket 30 in, bucket 39 not


def test_report_round_trips_through_its_dict() -> None:
    r = _report(_row(), _row(syscall="getppid", count=5), overflow=2)
    d = r.to_dict()
    assert d["entries"] == 2 and d["overflow"]["count"] == 2
    back = MetricsReport.from_dict(d)
    assert back == r
    # what protobuf's MessageToDict gives for uint64: strings
    d["rows"][0]["count"] = "3"
    assert MetricsReport.from_dict(d).rows[0].count == 3


def test_delta_and_merge() -> None:
    before = _report(_row(count=3), at=100.0)
    now = _report(
        _row(count=10, hist=_hist(b10=10)),
        _row(syscall="getppid", count=4, hist=_hist(b8=4)),
        at=101.0,
    )
    d = {r.syscall: r for r in delta(now, before)}
    assert d["openat"].count == 7 and d["openat"].buckets[10] == 7
    assert d["getppid"].count == 4  # new series counts from zero
    # a series pruned and back with a lower count starts over
    again = _report(_row(count=2), at=102.0)
    assert delta(again, now)[0].count == 2
    m = merge(now.rows, ("pod",))
    assert list(m) == [("web-1",)] and m[("web-1",)].count == 14


def test_collector_exposes_counters_histograms_and_swoll_names() -> None:
    rows = (
        _row(count=3),
        _row(errno=2, count=2, hist=_hist(b12=2)),
        # two host namespaces with the same labels are summed
        _row(pid_ns=1, syscall="getppid", count=5, container=""),
        _row(pid_ns=2, syscall="getppid", count=6, container=""),
    )

    class Source:
        pruned = 7

        def report(self) -> MetricsReport:
            return _report(*rows, overflow=4)

    reg = CollectorRegistry(auto_describe=False)
    reg.register(SyscallCollector(Source(), swoll_names=True))  # type: ignore[arg-type]
    text = generate_latest(reg).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    totals = {
        (s.labels["container"], s.labels["syscall"], s.labels["errno"]): s.value
        for s in fams["syshub_syscalls"].samples
    }
    assert totals == {
        ("web", "openat", "OK"): 3.0,
        ("web", "openat", "ENOENT"): 2.0,
        ("", "getppid", "OK"): 11.0,
    }
    hist = fams["syshub_syscall_duration_seconds"]
    inf = [
        s.value
        for s in hist.samples
        if s.name.endswith("_bucket") and s.labels["le"] == "+Inf" and s.labels["errno"] == "ENOENT"
    ]
    assert inf == [2.0]
    swoll = {
        (s.labels["syscall"], s.labels["err"]): s.value
        for s in fams["swoll_node_metrics_syscall_count"].samples
    }
    assert swoll[("sys_openat", "ENOENT")] == 2.0 and swoll[("sys_getppid", "OK")] == 11.0
    assert "swoll_node_metrics_syscall_count{" in text  # the exact swoll name, no suffix
    assert fams["syshub_metrics_overflow_calls"].samples[0].value == 4.0
    assert fams["syshub_metrics_pruned_series"].samples[0].value == 7.0
    assert fams["syshub_metrics_series"].samples[0].value == 4.0


def test_parse_addr() -> None:
    assert parse_addr("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_addr(":9100") == ("127.0.0.1", 9100)
    assert parse_addr("9100") == ("127.0.0.1", 9100)
    assert parse_addr("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_addr("host:http")
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        parse_addr("host:70000")


def test_top_groups_sorts_and_filters() -> None:
    before = _report(_row(count=3), at=100.0)
    now = _report(
        _row(count=13),
        _row(errno=2, count=50, hist=_hist(b20=50)),
        _row(syscall="getppid", count=30, container="db"),
        at=102.0,
    )
    view = View(by=("container",))
    lines = aggregate([(now, before)], view)
    assert [(ln.labels["container"], ln.calls, ln.errors) for ln in lines] == [
        ("web", 60, 50),
        ("db", 30, 0),
    ]
    doc = line_doc(lines[0], 2.0)
    assert doc["rate"] == 30.0 and doc["errors"] == 50
    assert doc["p99_us"] is not None and doc["p99_us"] > 500
    view = View(by=("syscall", "error"), text="db")
    assert [ln.labels for ln in aggregate([(now, before)], view)] == [
        {"syscall": "getppid", "error": "OK"}
    ]
    view = View(by=("container",), errors_only=True)
    assert [ln.calls for ln in aggregate([(now, before)], view)] == [50]


def test_top_keys() -> None:
    view = View(by=GROUPS[0])
    assert on_key(view, "s") and view.sort == "errors"
    assert on_key(view, "g") and view.by == GROUPS[1]
    assert on_key(view, "/") and view.editing == ""
    for k in "db\r":
        on_key(view, k)
    assert view.text == "db" and view.editing is None
    assert on_key(view, "p") and view.paused
    assert on_key(view, "e") and view.errors_only
    assert not on_key(view, "q")


def test_top_rejects_bad_options() -> None:
    from syshub.cli.errors import UsageError
    from syshub.cli.parser import build_parser
    from syshub.cli.top_cmd import _view

    args = build_parser().parse_args(["top", "--by", "container,bogus"])
    assert isinstance(args, argparse.Namespace)
    with pytest.raises(UsageError, match="bogus"):
        _view(args)


def test_fast_text_equals_the_generic_exposition() -> None:
    from syshub.metrics.exposition import MetricsExporter, render_syscalls

    rows = (
        _row(count=3),
        _row(errno=2, count=2, hist=_hist(b12=2)),
        _row(pid_ns=1, syscall="getppid", count=5, container='we"ird\\name'),
        _row(pid_ns=2, syscall="getppid", count=6, container='we"ird\\name'),
    )

    class Source:
        pruned = 0

        def report(self) -> MetricsReport:
            return _report(*rows)

    def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text)
            if f.name.startswith(("syshub_syscall", "swoll_"))
            for s in f.samples
        }

    reg = CollectorRegistry(auto_describe=False)
    reg.register(SyscallCollector(Source(), swoll_names=True))  # type: ignore[arg-type]
    generic = samples(generate_latest(reg).decode())
    fast = samples(render_syscalls(Source().report(), swoll_names=True))
    assert fast == generic and len(fast) == 3 * (len(EXPORT_BITS) + 1 + 2 + 1 + 2)
    body = MetricsExporter(Source()).render().decode()  # type: ignore[arg-type]
    names = {f.name for f in text_string_to_metric_families(body)}
    assert {"syshub_syscalls", "syshub_metrics_series", "syshub_scrape_duration_seconds"} <= names


def test_untimed_calls_stay_out_of_the_histogram() -> None:
    # 5 calls counted, 3 of them timed (2 were in flight when metrics started)
    r = _report(_row(syscall="read", count=5, hist=_hist(b12=3)))
    text = render_syscalls(r)
    got = {
        (s.name, s.labels.get("le", "")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert got[("syshub_syscalls_total", "")] == 5
    assert got[("syshub_syscall_duration_seconds_bucket", "+Inf")] == 3
    assert got[("syshub_syscall_duration_seconds_count", "")] == 3
    assert got[("syshub_syscall_duration_seconds_bucket", le_of(11))] == 0
    assert got[("syshub_syscall_duration_seconds_bucket", le_of(12))] == 3


def test_count_only_reports_export_no_durations() -> None:
    r = replace(_report(_row(count=4, hist=_hist())), latency=False)
    assert MetricsReport.from_dict(r.to_dict()).latency is False
    names = {f.name for f in text_string_to_metric_families(render_syscalls(r, swoll_names=True))}
    assert names == {"syshub_syscalls", "swoll_node_metrics_syscall_count"}


def test_top_sort_keys_order_the_rows() -> None:
    before = _report(at=100.0)
    now = _report(
        _row(container="a", count=10),
        _row(container="b", errno=2, count=5, hist=_hist(b20=5)),
        replace(_row(container="c", count=7, hist=_hist(b15=7)), total_ns=10**9),
        at=101.0,
    )
    order = {}
    for sort in ("rate", "errors", "time", "p50", "p99", "name"):
        view = View(by=("container",), sort=sort)
        order[sort] = [ln.labels["container"] for ln in aggregate([(now, before)], view)]
    assert order == {
        "rate": ["a", "c", "b"],
        "errors": ["b", "a", "c"],
        "time": ["c", "a", "b"],
        "p50": ["b", "c", "a"],
        "p99": ["b", "c", "a"],
        "name": ["a", "b", "c"],
    }
