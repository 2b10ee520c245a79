"""The agent's metrics component (--metrics-port, H-metrics' syshub.metrics):
/metrics over HTTP and the Metrics method over gRPC, both from one agent."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from support.agent_env import AgentProcess, wait_until
from syshub.client import AgentError

pytestmark = pytest.mark.bpf


def test_metrics_endpoint_and_rpc(tmp_path: Path) -> None:
    a = AgentProcess(tmp_path, ["--metrics-port", "0"], node="metered").start()
    try:
        urls = [r["url"] for r in a.log_records() if r.get("component") == "metrics"]
        assert urls and urls[0].startswith("http://127.0.0.1:"), a.logs()
        c = a.client()

        def counted() -> bool:
            m = c.metrics()
            return m.node == "metered" and any(r.count > 0 for r in m.rows)

        assert wait_until(counted, timeout=10)
        m = c.metrics()
        assert m.mode == "node" and m.max_entries > 0
        row = next(r for r in m.rows if r.count > 0)
        assert row.syscall and row.error
        # the histogram holds the timed calls: a call in flight when the
        # metrics started is counted without a duration
        assert all(sum(r.buckets) <= r.count for r in m.rows)
        assert any(0 < sum(r.buckets) == r.count for r in m.rows)
        with urllib.request.urlopen(urls[0], timeout=10) as resp:
            text = resp.read().decode()
        assert "syshub_syscalls_total" in text
    finally:
        assert a.stop() == 0, a.logs()


def test_metrics_rpc_without_the_component(tmp_path: Path) -> None:
    a = AgentProcess(tmp_path, node="plain").start()
    try:
        with pytest.raises(AgentError, match="FAILED_PRECONDITION: metrics"):
            a.client().metrics()
    finally:
        assert a.stop() == 0
