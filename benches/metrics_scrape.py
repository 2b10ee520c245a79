"""Scrape time of ``/metrics`` with many series (not a registered scenario).

``python -m benches.metrics_scrape [--namespaces N] [--repeat R] [--count-only]`` starts the
workload ``tests/progs/metrics_calls.c spread N``: N pid namespaces, each
making about 32 distinct (syscall, result) series and then staying alive, so
the kernel map holds ~32*N real series (plus the host's own) and the
namespace inodes are not reused. With node-wide metrics on, it then times
(median of R):

* reading the kernel map (``Metrics.snapshot``: batch lookup, CPUs summed);
* labelling (``ContainerMetrics.report``);
* a full scrape as the ``/metrics`` endpoint renders it
  (``MetricsExporter.render``: read, label, text);
* the same report through the generic path (the Collector and
  prometheus_client's ``generate_latest``), for comparison.

Times are wall and thread CPU time (CPU time is what a loaded machine does
not distort).

Prints one JSON document. Needs root, gcc."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from syshub.metrics import ContainerMetrics, Metrics
from syshub.metrics.exposition import MetricsExporter
from syshub.metrics.prometheus import SyscallCollector
from syshub.topology import Container

PROG = Path(__file__).resolve().parents[1] / "tests" / "progs" / "metrics_calls.c"


def _build(tmp: Path) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        sys.exit("metrics_scrape: needs gcc")
    out = tmp / "metrics_calls"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(PROG)], check=True)
    return out


def _median_time(fn: object, repeat: int) -> tuple[float, float, object]:
    """Median wall and thread-CPU seconds of ``fn()``, and its last result."""
    wall, cpu = [], []
    result: object = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        result = fn() if callable(fn) else None
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(wall), statistics.median(cpu), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.metrics_scrape")
    ap.add_argument("--namespaces", type=int, default=320, help="pid namespaces to spread over")
    ap.add_argument("--repeat", type=int, default=7, help="timed repetitions (median)")
    ap.add_argument("--max-entries", type=int, default=65536)
    ap.add_argument(
        "--count-only",
        action="store_true",
        help="metrics without latency (no duration histogram in the exposition)",
    )
    args = ap.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as d,
        Metrics("node", max_entries=args.max_entries, latency=not args.count_only) as m,
    ):
        prog = _build(Path(d))
        work = subprocess.Popen(
            [str(prog), "spread", str(args.namespaces)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert work.stdout is not None
            if work.stdout.readline().strip() != b"ready":
                sys.exit("metrics_scrape: the workload did not get ready")
            cm = ContainerMetrics(m, None, node="bench")
            # every workload namespace a container of its own pod: one label set per series
            host = os.stat("/proc/self/ns/pid").st_ino
            for i, ns in enumerate(sorted({r.pid_ns for r in m.snapshot().rows} - {host})):
                cm.add_container(
                    Container(f"c{i}", f"app-{i}", 0, ns, pod=f"pod-{i}", namespace="bench")
                )
            registry = CollectorRegistry(auto_describe=False)
            registry.register(SyscallCollector(cm))
            exporter = MetricsExporter(cm)
            read = _median_time(m.snapshot, args.repeat)
            label = _median_time(cm.report, args.repeat)
            scrape = _median_time(exporter.render, args.repeat)
            generic = _median_time(lambda: generate_latest(registry), max(1, args.repeat // 3))
        finally:
            if work.stdin is not None:
                work.stdin.close()
            work.wait(timeout=60)
    text = scrape[2]
    assert isinstance(text, bytes)

    def ms(t: tuple[float, float, object]) -> dict[str, float]:
        return {"wall_ms": round(t[0] * 1e3, 1), "cpu_ms": round(t[1] * 1e3, 1)}

    doc = {
        "namespaces": args.namespaces,
        "latency": not args.count_only,
        "kernel_series": getattr(read[2], "entries", 0),
        "report_rows": len(getattr(label[2], "rows", ())),
        "exported_label_sets": text.count(b"\nsyshub_syscalls_total{"),
        "exposition_bytes": len(text),
        "exposition_lines": text.count(b"\n"),
        "read_map": ms(read),
        "read_and_label": ms(label),
        "scrape": ms(scrape),
        "generic_prometheus_client_scrape": ms(generic),
        "repeat": args.repeat,
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
