"""The Grafana dashboard under deploy/grafana/ is valid JSON and queries only
metric names syshub's /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "syshub-syscalls.json"

#: Every sample name the Collector (and the Hub health it adds) can expose.
EXPOSED = {
    "syshub_syscalls_total",
    "syshub_syscall_duration_seconds_bucket",
    "syshub_syscall_duration_seconds_sum",
    "syshub_syscall_duration_seconds_count",
    "syshub_metrics_series",
    "syshub_metrics_series_max",
    "syshub_metrics_overflow_calls_total",
    "syshub_metrics_unmeasured_calls_total",
    "syshub_metrics_untimed_calls_total",
    "syshub_metrics_latency",
    "syshub_ring_pending_bytes",
    "syshub_ring_capacity_bytes",
    "syshub_ring_use_ratio",
    "syshub_metrics_pruned_series_total",
    "syshub_metrics_read_seconds",
    "syshub_scrape_duration_seconds",
    "syshub_events_total",
    "syshub_dropped_total",
    "syshub_jobs",
    "syshub_filter_keys",
}


def test_dashboard_queries_exposed_metrics_only() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "syshub-syscalls"
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", ())]
    exprs += [
        v["query"]["query"] for v in d["templating"]["list"] if isinstance(v.get("query"), dict)
    ]
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"\bsyshub_[a-z_]+", e)}
    assert used and used <= EXPOSED, used - EXPOSED
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
