"""Kernel metrics of a workload in a real container (the private containerd of
the ``containerd`` fixture, containers followed by the product's CriObserver):
exact counts per syscall and errno, labelled with the pod and container, and
the container's series pruned once it stops. And a full kernel map's overflow
as /metrics shows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from metrics_support import build_metrics_calls
from prometheus_client.parser import text_string_to_metric_families

from support.containerd import ContainerdEnv
from syshub.metrics import ContainerMetrics, Metrics, MetricsRow, MetricsSnapshot
from syshub.metrics.http import serve_metrics
from syshub.nsproc import NamespacedProcess, wait_blocked
from syshub.topology import Container, LocalObserver
from syshub.topology.cri import CriObserver

pytestmark = pytest.mark.bpf

NR_OPENAT, NR_GETPPID, NR_EXIT_GROUP = 257, 110, 231
ENOENT = 2


@pytest.fixture(scope="session")
def metrics_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_metrics_calls(tmp_path_factory)


def _wait(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not met in {timeout} s")
        time.sleep(0.02)


def _of(snap: MetricsSnapshot, pid_ns: int) -> dict[tuple[int, int], MetricsRow]:
    return {(r.nr, r.errno): r for r in snap.rows if r.pid_ns == pid_ns}


def _counts(
    now: dict[tuple[int, int], MetricsRow], base: dict[tuple[int, int], MetricsRow]
) -> dict[tuple[int, int], int]:
    out = {k: r.count - (base[k].count if k in base else 0) for k, r in now.items()}
    return {k: n for k, n in out.items() if n}


@pytest.mark.containerd
def test_exact_counts_in_a_container_then_pruned_when_it_stops(
    containerd: ContainerdEnv, metrics_calls: Path
) -> None:
    n, fails, k = 40, 15, 1234
    namespace = f"mx-{uuid.uuid4().hex[:8]}"
    # The container's shell waits for the fifos the test makes in its /tmp,
    # opens `go` (blocks until the test writes it), runs the workload as its
    # child and waits opening `done`: the container outlives the workload, so
    # its series are read before it stops.
    script = (
        "while [ ! -p /tmp/done ]; do sleep 0.05; done; read x < /tmp/go; "
        f"/tmp/metrics_calls mix {n} {fails} {k}; read y < /tmp/done"
    )
    obs = CriObserver(containerd.endpoint, namespace=namespace, poll_interval=0.1)
    m = Metrics("containers")
    cm = ContainerMetrics(m, obs, node="node-c").start()
    pod_id = None
    try:
        assert cm.wait_synced(15)
        pod_id = containerd.run_pod("calls-0", namespace)
        cid = containerd.run_container(pod_id, "calls", ["/bin/sh", "-c", script])
        pid = containerd.container_pid(cid)
        pid_ns = os.stat(f"/proc/{pid}/ns/pid").st_ino
        _wait(lambda: pid_ns in m.namespaces(), what="the container's namespace counted")
        root = Path(f"/proc/{pid}/root/tmp")
        shutil.copy(metrics_calls, root / "metrics_calls")
        os.chmod(root / "metrics_calls", 0o755)
        os.mkfifo(root / "go")
        os.mkfifo(root / "done")
        assert wait_blocked(pid, NR_OPENAT), "the shell never waited on /tmp/go"
        base = _of(m.snapshot(), pid_ns)
        with open(root / "go", "w") as go:
            go.write("g\n")

        def workload_ended() -> bool:
            return _counts(_of(m.snapshot(), pid_ns), base).get((NR_EXIT_GROUP, 0), 0) >= 1

        _wait(workload_ended, what="the workload's exit_group")
        assert wait_blocked(pid, NR_OPENAT), "the shell never waited on /tmp/done"
        snap = m.snapshot()
        got = _counts(_of(snap, pid_ns), base)
        assert got[(NR_OPENAT, ENOENT)] == fails
        # + 1: the shell's own open of /tmp/go (its open of /tmp/done is in flight)
        assert got[(NR_OPENAT, 0)] == n - fails + 1
        assert got[(NR_GETPPID, 0)] == k
        assert got[(NR_EXIT_GROUP, 0)] == 1
        assert {r.pid_ns for r in snap.rows} == {pid_ns}  # containers mode: nothing else
        labelled = {(r.syscall, r.error): r for r in cm.report(snap).rows}
        row = labelled[("getppid", "OK")]
        assert (row.namespace, row.pod, row.container) == (namespace, "calls-0", "calls")
        before = base[(NR_GETPPID, 0)].count if (NR_GETPPID, 0) in base else 0
        assert row.count == before + k
        # the container stops: its namespace leaves the set, its series are pruned
        with open(root / "done", "w") as done:
            done.write("d\n")
        _wait(lambda: pid_ns not in m.namespaces(), what="the stopped container's namespace")
        _wait(lambda: not _of(m.snapshot(), pid_ns), what="the stopped container's series")
        assert cm.report().rows == ()
        assert cm.pruned >= len(got)
    finally:
        if pod_id is not None:
            containerd.remove_pod(pod_id)
        cm.stop()
        m.close()
        obs.close()


def test_overflow_reaches_the_metrics_endpoint(metrics_calls: Path) -> None:
    """A kernel map of 3 series: the calls of the other series are counted in
    the overflow, which /metrics exports; series + overflow = every call."""
    obs = LocalObserver()
    m = Metrics("containers", max_entries=3)
    cm = ContainerMetrics(m, obs, node="n").start()
    srv = serve_metrics("127.0.0.1:0", cm)
    p = NamespacedProcess([str(metrics_calls), "mix", "10", "4", "50"], stdin=subprocess.DEVNULL)
    try:
        assert cm.wait_synced(5)
        c = Container(id="id-o", name="o", pid=p.pid, pid_ns=p.pid_ns, pod="o-pod", namespace="ns")
        obs.start_container(c)
        _wait(lambda: m.namespaces() == [p.pid_ns], what="the namespace counted")
        p.release()
        assert p.wait() == 0
        snap = m.snapshot()
        with urllib.request.urlopen(srv.url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        srv.close()
        p.kill()
        p.close()
        cm.stop()
        m.close()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    overflow = fams["syshub_metrics_overflow_calls"].samples[0].value
    series = fams["syshub_syscalls"].samples
    assert len(series) == 3 and all(s.labels["container"] == "o" for s in series)
    assert overflow == snap.overflow.count > 0
    # 10 openat (6 + 4 failing), 50 getppid, exit_group, and the rest of the C start-up
    assert sum(s.value for s in series) + overflow == snap.calls >= 61
    assert fams["syshub_metrics_series"].samples[0].value == 3
    assert fams["syshub_metrics_series_max"].samples[0].value == 3
