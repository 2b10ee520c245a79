"""The agent's metrics component (--metrics-port, H-metrics' syshub.metrics):
/metrics over HTTP and the Metrics method over gRPC, both from one agent."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.agent_env import AgentProcess, wait_until
from syshub.client import AgentError

pytestmark = pytest.mark.bpf


def test_metrics_endpoint_and_rpc(tmp_path: Path) -> None:
    a = AgentProcess(tmp_path, ["--metrics-port", "0", "--metrics-latency"], node="metered").start()
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
        assert "syshub_syscalls_total" in text and "swoll_node_metrics" not in text
        # --metrics-latency: the duration histogram is exported
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["syshub_metrics_latency"].samples[0].value == 1
        hist = fams["syshub_syscall_duration_seconds"].samples
        assert any(s.name.endswith("_bucket") and s.value > 0 for s in hist)
        # the agent's own health: events per stage, drops per reason, ring and map
        # use, scrape time
        assert {s.labels["stage"] for s in fams["syshub_events"].samples} >= {"matched"}
        reasons = {s.labels["reason"] for s in fams["syshub_dropped"].samples}
        assert {"ring_full", "subscriber_queue"} <= reasons
        assert fams["syshub_ring_capacity_bytes"].samples[0].value == 16 << 20
        assert 0 <= fams["syshub_ring_use_ratio"].samples[0].value < 1
        assert fams["syshub_metrics_series"].samples[0].value > 0
        assert fams["syshub_metrics_series_max"].samples[0].value == m.max_entries
        assert fams["syshub_scrape_duration_seconds"].samples[0].value >= 0
    finally:
        assert a.stop() == 0, a.logs()


@pytest.mark.parametrize("how", ["default", "flag", "env", "file"])
def test_metrics_without_latency(tmp_path: Path, how: str) -> None:
    """metrics_latency false (the default, --no-metrics-latency,
    $SYSHUB_AGENT_METRICS_LATENCY or the YAML key): counts and errnos, no
    histogram lines, no durations."""
    args, env = ["--metrics-port", "0"], {}
    if how == "flag":
        args.append("--no-metrics-latency")
    elif how == "env":
        env["SYSHUB_AGENT_METRICS_LATENCY"] = "false"
    elif how == "file":
        (tmp_path / "agent.yaml").write_text("metrics_latency: false\n")
        args += ["--config", str(tmp_path / "agent.yaml")]
    a = AgentProcess(tmp_path, args, node="counting", env=env).start()
    try:
        urls = [r["url"] for r in a.log_records() if r.get("component") == "metrics"]
        assert urls, a.logs()
        c = a.client()
        assert wait_until(lambda: any(r.count > 0 for r in c.metrics().rows), timeout=10)
        rows = c.metrics().rows
        assert all(r.total_ns == 0 and sum(r.buckets) == 0 for r in rows)
        with urllib.request.urlopen(urls[0], timeout=10) as resp:
            text = resp.read().decode()
    finally:
        assert a.stop() == 0, a.logs()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["syshub_metrics_latency"].samples[0].value == 0
    assert sum(s.value for s in fams["syshub_syscalls"].samples) > 0
    assert "syshub_syscall_duration_seconds" not in fams
    assert "_bucket{" not in text and "syscall_duration_seconds" not in text


def test_metrics_rpc_without_the_component(tmp_path: Path) -> None:
    a = AgentProcess(tmp_path, node="plain").start()
    try:
        with pytest.raises(AgentError, match="FAILED_PRECONDITION: metrics"):
            a.client().metrics()
    finally:
        assert a.stop() == 0


def test_top_once_json_against_two_agents(tmp_path: Path) -> None:
    """`syshub top --agent A --agent B --once -o json`: one snapshot of both
    nodes, a row per node for the same workload (each agent counts the host)."""
    import json
    import subprocess
    import sys

    from syshub.nsproc import NamespacedProcess

    agents = [
        AgentProcess(tmp_path, ["--metrics-port", "0"], node=name).start()
        for name in ("node-1", "node-2")
    ]
    loop = NamespacedProcess(
        [
            sys.executable,
            "-c",
            "import os, time\nend = time.time() + 20\n"
            "while time.time() < end:\n    for _ in range(1000): os.getppid()\n",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        loop.release()
        top = [sys.executable, "-m", "syshub.cli", "top", "--once", "-o", "json"]
        for a in agents:
            top += ["--agent", a.target]
        top += ["--interval", "0.5", "--by", "node,pid_ns,syscall", "-n", "1000"]
        out = subprocess.run(top, capture_output=True, text=True, timeout=60)
    finally:
        loop.kill()
        loop.close()
        for a in agents:
            assert a.stop() == 0, a.logs()
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert sorted(doc["nodes"]) == ["node-1", "node-2"]
    rows = [r for r in doc["rows"] if r["pid_ns"] == str(loop.pid_ns) and r["syscall"] == "getppid"]
    assert sorted(r["node"] for r in rows) == ["node-1", "node-2"], doc["rows"][:5]
    assert all(r["rate"] > 1000 and r["calls"] > 0 for r in rows)
    # an unreachable agent is a one-line error
    bad = [sys.executable, "-m", "syshub.cli", "top", "--once", "-o", "json"]
    bad += ["--agent", f"unix://{tmp_path}/none.sock", "--interval", "0.1"]
    err = subprocess.run(bad, capture_output=True, text=True, timeout=60)
    assert err.returncode != 0 and "Traceback" not in err.stderr
    assert len(err.stderr.strip().splitlines()) == 1 and "none.sock" in err.stderr


def test_swoll_names_behind_the_flag(tmp_path: Path) -> None:
    """--metrics-swoll adds swoll's families with swoll's labels (err, sys_
    names) next to syshub's; without the flag they are absent (the first test)."""
    args = ["--metrics-port", "0", "--metrics-swoll", "--metrics-latency"]
    a = AgentProcess(tmp_path, args, node="sw").start()
    try:
        urls = [r["url"] for r in a.log_records() if r.get("component") == "metrics"]
        assert urls, a.logs()
        assert wait_until(lambda: any(r.count > 0 for r in a.client().metrics().rows), 10)
        with urllib.request.urlopen(urls[0], timeout=10) as resp:
            text = resp.read().decode()
    finally:
        assert a.stop() == 0, a.logs()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    count = fams["swoll_node_metrics_syscall_count"].samples
    assert count and all(s.labels["syscall"].startswith("sys_") for s in count)
    assert {"namespace", "pod", "container", "syscall", "class", "group", "err"} == set(
        count[0].labels
    )
    assert fams["swoll_node_metrics_syscall_time"].samples
    assert "syshub_syscalls" in fams and "syshub_syscall_duration_seconds" in fams
    # the same calls under both names
    total = sum(s.value for s in fams["syshub_syscalls"].samples)
    assert sum(s.value for s in count) == total > 0
