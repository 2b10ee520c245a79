"""Scrape time of ``/metrics`` with many series (not a registered scenario).

``python -m benches.metrics_scrape [--namespaces N] [--repeat R]`` starts the
workload ``tests/progs/metrics_calls.c spread N``: N pid namespaces, each
making about 32 distinct (syscall, result) series and then staying alive, so
the kernel map holds ~32*N real series (plus the host's own) and the
namespace inodes are not reused. With node-wide metrics on, it then times
(median of R):

* reading the kernel map (``Metrics.snapshot``: batch lookup, CPUs summed);
* labelling (``ContainerMetrics.report``);
* a full scrape: the Collector plus prometheus_client's text exposition
  (``generate_latest``), as Prometheus would get it over HTTP.

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


def _median_time(fn: object, repeat: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn() if callable(fn) else None
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.metrics_scrape")
    ap.add_argument("--namespaces", type=int, default=320, help="pid namespaces to spread over")
    ap.add_argument("--repeat", type=int, default=7, help="timed repetitions (median)")
    ap.add_argument("--max-entries", type=int, default=65536)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d, Metrics("node", max_entries=args.max_entries) as m:
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
            collector = SyscallCollector(cm)
            registry.register(collector)
            read_s, snap = _median_time(m.snapshot, args.repeat)
            label_s, report = _median_time(cm.report, args.repeat)
            scrape_s, text = _median_time(lambda: generate_latest(registry), args.repeat)
        finally:
            if work.stdin is not None:
                work.stdin.close()
            work.wait(timeout=60)
    assert isinstance(text, bytes)
    series = getattr(snap, "entries", 0)
    doc = {
        "namespaces": args.namespaces,
        "kernel_series": series,
        "exported_label_sets": text.count(b"\nsyshub_syscalls_total{"),
        "exposition_bytes": len(text),
        "exposition_lines": text.count(b"\n"),
        "read_ms": round(read_s * 1e3, 2),
        "label_ms": round(label_s * 1e3, 2),
        "scrape_ms": round(scrape_s * 1e3, 2),
        "collector_ms_last": round(collector.last_scrape_seconds * 1e3, 2),
        "repeat": args.repeat,
        "report_rows": len(getattr(report, "rows", ())),
    }
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
