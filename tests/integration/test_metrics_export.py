"""Kernel metrics through topology, Prometheus and `syshub top`, on the real
kernel: labels from an observer, pruning when a container stops, the
/metrics text parsed with prometheus_client's parser, and `syshub top --once
-o json` against a running workload."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from metrics_support import build_metrics_calls
from prometheus_client.parser import text_string_to_metric_families

from syshub.metrics import ContainerMetrics, Metrics
from syshub.metrics.http import serve_metrics
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="session")
def metrics_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_metrics_calls(tmp_path_factory)


NR_GETPPID = 110


@pytest.fixture
def labelled() -> Iterator[tuple[ContainerMetrics, LocalObserver]]:
    obs = LocalObserver()
    m = Metrics("containers")
    cm = ContainerMetrics(m, obs, node="node-a").start()
    try:
        assert cm.wait_synced(5)
        yield cm, obs
    finally:
        cm.stop()
        m.close()


def _container(p: NamespacedProcess, name: str) -> Container:
    return Container(
        id=f"id-{name}", name=name, pid=p.pid, pid_ns=p.pid_ns, pod=f"{name}-pod", namespace="prod"
    )


def _wait(cond: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not callable(cond) or not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_labels_namespace_set_and_pruning(
    labelled: tuple[ContainerMetrics, LocalObserver], metrics_calls: Path
) -> None:
    cm, obs = labelled
    p = NamespacedProcess([str(metrics_calls), "mix", "5", "2", "321"], stdin=subprocess.DEVNULL)
    try:
        c = _container(p, "web")
        obs.start_container(c)
        _wait(lambda: cm.metrics.namespaces() == [p.pid_ns])
        p.release()
        assert p.wait() == 0
        rows = {(r.syscall, r.error): r for r in cm.report().rows}
        got = rows[("getppid", "OK")]
        assert (got.namespace, got.pod, got.container, got.count) == ("prod", "web-pod", "web", 321)
        assert rows[("openat", "ENOENT")].count == 2
        assert cm.report().to_dict()["node"] == "node-a"
        obs.stop_container(c)
        _wait(lambda: cm.metrics.namespaces() == [])
        assert cm.report().rows == ()
        assert [r for r in cm.metrics.snapshot().rows if r.pid_ns == p.pid_ns] == []
        assert cm.pruned >= len(rows)
    finally:
        p.kill()
        p.close()


def test_metrics_endpoint_parses(
    labelled: tuple[ContainerMetrics, LocalObserver], metrics_calls: Path
) -> None:
    cm, obs = labelled
    p = NamespacedProcess([str(metrics_calls), "mix", "6", "6", "4321"], stdin=subprocess.DEVNULL)
    srv = serve_metrics("127.0.0.1:0", cm, swoll_names=True)
    try:
        obs.start_container(_container(p, "api"))
        _wait(lambda: cm.metrics.namespaces() == [p.pid_ns])
        p.release()
        assert p.wait() == 0
        for _ in range(2):  # the second carries the first's duration
            with urllib.request.urlopen(srv.url, timeout=10) as resp:
                text = resp.read().decode()
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    finally:
        srv.close()
        p.kill()
        p.close()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    total = {
        (s.labels["pod"], s.labels["syscall"], s.labels["errno"]): s
        for s in fams["syshub_syscalls"].samples
    }
    getppid = total[("api-pod", "getppid", "OK")]
    assert getppid.value == 4321.0
    assert getppid.labels["namespace"] == "prod" and getppid.labels["container"] == "api"
    assert getppid.labels["class"] and getppid.labels["group"]
    assert total[("api-pod", "openat", "ENOENT")].value == 6.0
    buckets = [
        s
        for s in fams["syshub_syscall_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["syscall"] == "getppid"
    ]
    values = [s.value for s in buckets]
    assert values == sorted(values) and values[-1] == 4321.0
    assert buckets[-1].labels["le"] == "+Inf"
    swoll = {
        (s.labels["syscall"], s.labels["err"]): s.value
        for s in fams["swoll_node_metrics_syscall_count"].samples
    }
    assert swoll[("sys_getppid", "OK")] == 4321.0
    assert fams["syshub_scrape_duration_seconds"].samples[0].value > 0
    assert fams["syshub_metrics_series_max"].samples[0].value == 16384


def test_metrics_endpoint_with_hub_health(metrics_calls: Path) -> None:
    from syshub import Hub, HubConfig

    obs = LocalObserver()
    hub = Hub(HubConfig(ring_bytes=1 << 20), observer=obs).start()
    m = Metrics("node")
    cm = ContainerMetrics(m, hub).start()
    srv = serve_metrics("127.0.0.1:0", cm, hub=hub)
    try:
        subprocess.run(["true"], check=True)  # a process other than the tracer: a series
        with urllib.request.urlopen(srv.url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        srv.close()
        cm.stop()
        m.close()
        hub.stop()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    reasons = {s.labels["reason"] for s in fams["syshub_dropped"].samples}
    assert {"ring_full", "nomem", "subscriber_queue", "unrouted", "lost"} <= reasons
    stages = {s.labels["stage"] for s in fams["syshub_events"].samples}
    assert {"matched", "emitted", "routed"} <= stages
    # node mode: this host's own calls are series too
    assert fams["syshub_metrics_series"].samples[0].value > 0
    # the trace ring's fill: 1 MiB, nothing traced, so (nearly) empty
    assert fams["syshub_ring_capacity_bytes"].samples[0].value == 1 << 20
    assert 0 <= fams["syshub_ring_pending_bytes"].samples[0].value < 1 << 20
    assert 0 <= fams["syshub_ring_use_ratio"].samples[0].value < 1
    assert fams["syshub_metrics_latency"].samples[0].value == 1


def test_ring_use_sees_records_the_reader_has_not_taken(metrics_calls: Path) -> None:
    import syshub
    from syshub.metrics import ring_use

    assert ring_use() == []  # no probe in this process
    with syshub.Probe(ring_bytes=1 << 20, poll_ms=1000) as probe:
        (ring,) = ring_use()
        assert ring.capacity == 1 << 20 and ring.pending < ring.capacity
        # the reader thread takes records on its 1 s timer (or a quarter of
        # the ring): right after a short workload they sit in the ring; on a
        # slow machine the timer may win, so up to 5 tries
        pending = 0
        for _ in range(5):
            p = NamespacedProcess(
                [str(metrics_calls), "mix", "0", "0", "300"], stdin=subprocess.DEVNULL
            )
            try:
                probe.add_filter(p.pid_ns, "getppid")
                p.release()
                assert p.wait() == 0
                (ring,) = ring_use()
            finally:
                p.kill()
                p.close()
            pending = ring.pending
            if pending > 0:
                break
        assert 0 < pending < ring.capacity and 0 < ring.fraction < 1
        assert len(probe.poll(1000, 2000)) > 0
    assert ring_use() == []


def test_top_once_json_against_a_running_workload(metrics_calls: Path) -> None:
    p = NamespacedProcess([str(metrics_calls), "loop", "20"], stdin=subprocess.DEVNULL)
    try:
        p.release()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "syshub.cli",
                "top",
                "--once",
                "-o",
                "json",
                "--interval",
                "0.5",
                "--by",
                "pid_ns,container,syscall,error",
                "--limit",
                "1000",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        p.kill()
        p.close()
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["by"] == ["pid_ns", "container", "syscall", "error"]
    rows = [r for r in doc["rows"] if r["pid_ns"] == str(p.pid_ns) and r["syscall"] == "getppid"]
    assert len(rows) == 1, doc["rows"][:5]
    row = rows[0]
    # the loop calls getppid flat out: far more than 10k per second
    assert row["rate"] > 10_000 and row["calls"] > 5_000
    assert row["error"] == "OK" and row["errors"] == 0
    assert row["container"]  # the local topology labels its namespace
    assert row["p50_us"] is not None and row["p50_us"] < 1000


def test_top_live_on_a_terminal_takes_keys() -> None:
    import os
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: syshub top on the pty
        # A wide terminal, so the header line is never cut short whatever the
        # environment's default (COLUMNS, the pty's size).
        os.environ["COLUMNS"], os.environ["LINES"] = "200", "50"
        os.execv(
            sys.executable, [sys.executable, "-m", "syshub.cli", "top", "-i", "0.3", "-n", "5"]
        )
    out = b""

    def read_until(text: bytes, timeout: float = 20.0) -> bool:
        nonlocal out
        end = time.monotonic() + timeout
        while text not in out and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    return text in out
        return text in out

    try:
        assert read_until(b"syshub top:"), out[-2000:]
        # each key, then what the next frame must show
        for key, shows in (
            (b"g", b"by node,namespace,pod,container;"),
            (b"s", b"sort errors"),
            (b"/x\r", b"filter 'x'"),
            (b"p", b"paused"),
        ):
            os.write(fd, key)
            assert read_until(shows), (key, out[-2000:])
        os.write(fd, b"q")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


def test_top_once_json_against_an_agent(tmp_path: Path, metrics_calls: Path) -> None:
    sock = tmp_path / "agent.sock"
    cmd = [sys.executable, "-m", "syshub.cli", "agent", "--socket", str(sock), "--metrics-port"]
    cmd += ["0", "--state-dir", str(tmp_path / "state")]  # not the host's /var/lib/syshub
    agent = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    p = NamespacedProcess([str(metrics_calls), "loop", "20"], stdin=subprocess.DEVNULL)
    try:
        _wait(sock.exists, timeout=30)
        p.release()
        top = ["top", "--agent", f"unix://{sock}", "--once", "-o", "json", "--interval", "0.5"]
        out = subprocess.run(
            [sys.executable, "-m", "syshub.cli", *top, "--by", "node,pid_ns,syscall", "-n", "1000"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        p.kill()
        p.close()
        agent.terminate()
        agent.wait(timeout=30)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = [r for r in doc["rows"] if r["pid_ns"] == str(p.pid_ns) and r["syscall"] == "getppid"]
    assert len(rows) == 1 and rows[0]["rate"] > 10_000
    assert rows[0]["node"] == doc["nodes"][0] != ""
