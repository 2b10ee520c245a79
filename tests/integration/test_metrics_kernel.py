"""The kernel metrics program on the real kernel: exact counts per (pid
namespace, syscall, errno) for a known workload in its own pid namespace,
histogram buckets of known sleeps, containers mode, the bounded map's
overflow, pruning, and that closing detaches everything."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from metrics_support import build_metrics_calls

from syshub.metrics import BareHooks, Metrics, MetricsRow, MetricsSnapshot, bucket_of
from syshub.nsproc import NamespacedProcess

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="session")
def metrics_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_metrics_calls(tmp_path_factory)


NR_OPENAT, NR_GETPPID, NR_NANOSLEEP, NR_EXIT, NR_EXIT_GROUP = 257, 110, 35, 60, 231
NR_CLONE3, NR_RT_SIGRETURN = 435, 15
ENOENT = 2


_held: list[NamespacedProcess] = []


@pytest.fixture(autouse=True)
def _hold_namespaces() -> Iterator[None]:
    """The namespaces run_in_namespace made stay held until the test's end:
    a dead namespace's inode is reused at once, and another process on the
    machine (another test run) would add its calls to the series read."""
    try:
        yield
    finally:
        while _held:
            _held.pop().close()


def run_in_namespace(argv: list[str], before_release: object = None) -> int:
    """Run argv as PID 1 of a new pid namespace to its end; its namespace
    inode (held until the test ends)."""
    p = NamespacedProcess(argv, stdin=subprocess.DEVNULL)
    _held.append(p)
    try:
        if callable(before_release):
            before_release(p.pid_ns)
        p.release()
        assert p.wait() == 0
        return p.pid_ns
    finally:
        p.kill()


def of_ns(snap: MetricsSnapshot, ns: int) -> dict[tuple[int, int], MetricsRow]:
    return {(r.nr, r.errno): r for r in snap.rows if r.pid_ns == ns}


def run_counted(m: Metrics, argv: list[str]) -> dict[tuple[int, int], MetricsRow]:
    """The series a node-wide ``m`` counted for argv's own calls. A new
    namespace takes the lowest free inode number, often one a namespace of
    another process on the machine had while ``m`` was already counting:
    its calls are read before the release and subtracted (the namespace is
    held, so nobody else has the inode meanwhile)."""
    base: dict[tuple[int, int], MetricsRow] = {}

    def read_base(ns: int) -> None:
        base.update(of_ns(m.snapshot(), ns))

    ns = run_in_namespace(argv, before_release=read_base)
    out = {}
    for k, r in of_ns(m.snapshot(), ns).items():
        b = base.get(k)
        if b is not None:
            r = replace(
                r,
                count=r.count - b.count,
                total_ns=r.total_ns - b.total_ns,
                buckets=tuple(x - y for x, y in zip(r.buckets, b.buckets, strict=True)),
            )
        if r.count:
            out[k] = r
    return out


@pytest.fixture
def node() -> Iterator[Metrics]:
    m = Metrics("node")
    try:
        yield m
    finally:
        m.close()


def _check_known_workload(m: Metrics, metrics_calls: Path) -> dict[tuple[int, int], MetricsRow]:
    n, k = 40, 1234
    fails = 15
    rows = run_counted(m, [str(metrics_calls), "mix", str(n), str(fails), str(k)])
    assert rows[(NR_OPENAT, 0)].count == n - fails
    assert rows[(NR_OPENAT, ENOENT)].count == fails
    assert rows[(NR_OPENAT, ENOENT)].error == "ENOENT"
    assert rows[(NR_GETPPID, 0)].count == k
    assert rows[(NR_GETPPID, 0)].syscall == "getppid"
    assert rows[(NR_GETPPID, 0)].klass != ""
    # exit_group never returns: counted as the thread exits, with no duration
    assert rows[(NR_EXIT_GROUP, 0)].count == 1
    return rows


def test_exact_counts_of_a_known_workload(node: Metrics, metrics_calls: Path) -> None:
    assert node.latency
    rows = _check_known_workload(node, metrics_calls)
    eg = rows[(NR_EXIT_GROUP, 0)]
    assert eg.total_ns == 0 and eg.buckets[0] == 1
    for r in rows.values():
        # every call of the workload started after the hooks: all timed
        assert sum(r.buckets) == r.count
        assert r.total_ns >= 0
    assert rows[(NR_GETPPID, 0)].total_ns > 0


def test_count_only_mode_counts_exactly_without_timing(metrics_calls: Path) -> None:
    with Metrics("node", latency=False) as m:
        assert not m.latency
        rows = _check_known_workload(m, metrics_calls)
        snap = m.snapshot()
    assert not snap.latency and snap.untimed == 0
    for r in rows.values():
        assert r.total_ns == 0 and sum(r.buckets) == 0


def test_exits_clones_and_sigreturns_are_counted_once(tmp_path: Path) -> None:
    # a thread ends in SYS_exit, the process in SYS_exit_group (neither
    # returns); clone3 returns twice (parent and child) but is one call;
    # rt_sigreturn's exit shows no number (orig_ax -1). join() returns once
    # a thread's Python part is done, before its SYS_exit: the script waits
    # until the kernel has no thread but the main one (else exit_group may
    # kill a thread that never called exit, rightly not counted)
    script = tmp_path / "threads.py"
    script.write_text(
        "import os, signal, threading, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
        "for _ in range(5):\n"
        "    os.kill(os.getpid(), signal.SIGUSR1)\n"
        "ts = [threading.Thread(target=lambda: None) for _ in range(3)]\n"
        "[t.start() for t in ts]\n"
        "[t.join() for t in ts]\n"
        "while len(os.listdir('/proc/self/task')) > 1:\n"
        "    time.sleep(0.001)\n"
    )
    with Metrics("node", latency=False) as m:
        rows = run_counted(m, [sys.executable, "-I", "-S", str(script)])
    assert rows[(NR_EXIT, 0)].count == 3
    assert rows[(NR_EXIT_GROUP, 0)].count == 1
    assert rows[(NR_CLONE3, 0)].count == 3
    assert rows[(NR_RT_SIGRETURN, 0)].count == 5
    assert all(nr < 1024 for nr, _ in rows)


def test_histogram_buckets_of_known_sleeps(node: Metrics, metrics_calls: Path) -> None:
    # lengths in the lower part of their buckets, with room for a loaded
    # machine's wake-up delay: 2**23 < 9 ms < 2**24 ns, 2**25 < 35 ms < 2**26,
    # 2**27 < 140 ms < 2**28; and two short 2.2 ms sleeps (2**21 < 2.2 ms < 2**22)
    lengths = {9.0: 3, 35.0: 2, 140.0: 1}
    argv = [str(metrics_calls), "sleep", "2.2", "2.2"]
    for ms, times in lengths.items():
        argv += [str(ms)] * times
    row = run_counted(node, argv)[(NR_NANOSLEEP, 0)]
    assert row.count == 8
    want = {bucket_of(int(ms * 1e6)): times for ms, times in lengths.items()}
    assert want == {24: 3, 26: 2, 28: 1}
    got = {b: n for b, n in enumerate(row.buckets) if n}
    # a sleep never ends early; a short one may be late by a bucket under load
    assert got.get(22, 0) + got.get(23, 0) == 2
    assert {b: n for b, n in got.items() if b > 23} == want
    assert row.total_ns >= (2 * 2.2 + sum(ms * t for ms, t in lengths.items())) * 1e6
    p50 = row.percentile_ns(0.5)
    assert p50 is not None and (1 << 23) <= p50 < (1 << 24)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_calls_switched_out_and_migrated_are_timed(node: Metrics, metrics_calls: Path) -> None:
    # a call's entry stamp is kept per task, not per CPU: sleeps that end on
    # the other CPU (affinity flipped while they sleep) are timed in their
    # own bucket
    cpus = sorted(os.sched_getaffinity(0))[:2]
    p = NamespacedProcess([str(metrics_calls), "sleep", *["40"] * 6], stdin=subprocess.DEVNULL)
    _held.append(p)
    base = of_ns(node.snapshot(), p.pid_ns).get((NR_NANOSLEEP, 0))
    flips = 0
    try:
        os.sched_setaffinity(p.pid, {cpus[0]})
        p.release()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                os.sched_setaffinity(p.pid, {cpus[flips % 2]})
            except (ProcessLookupError, OSError):
                break
            flips += 1
            time.sleep(0.013)
            if select.select([p.pidfd], [], [], 0)[0]:  # exited
                break
        assert p.wait() == 0
    finally:
        p.kill()
    assert flips >= 6
    row = of_ns(node.snapshot(), p.pid_ns)[(NR_NANOSLEEP, 0)]
    count = row.count - (base.count if base else 0)
    buckets = [a - (base.buckets[i] if base else 0) for i, a in enumerate(row.buckets)]
    assert count == 6
    # 2**25 < 40 ms < 2**26 ns (a loaded machine's late wake-up stays inside)
    assert buckets[26] == 6 and sum(buckets) == 6


def test_containers_mode_counts_only_the_namespace_set(metrics_calls: Path) -> None:
    with Metrics("containers") as m:
        assert m.add_namespace(12345) and not m.add_namespace(12345)
        assert m.remove_namespace(12345) and not m.remove_namespace(12345)
        argv = [str(metrics_calls), "mix", "10", "4", "77"]
        # both alive at once: a dead namespace's inode is reused at once
        procs = [NamespacedProcess(argv, stdin=subprocess.DEVNULL) for _ in range(2)]
        try:
            wanted, other = (p.pid_ns for p in procs)
            assert wanted != other
            m.add_namespace(wanted)
            for p in procs:
                p.release()
            assert [p.wait() for p in procs] == [0, 0]
            snap = m.snapshot()
        finally:
            for p in procs:
                p.kill()
                p.close()
        assert m.namespaces() == [wanted]
    assert {r.pid_ns for r in snap.rows} == {wanted}
    rows = of_ns(snap, wanted)
    assert rows[(NR_GETPPID, 0)].count == 77
    assert rows[(NR_OPENAT, ENOENT)].count == 4
    assert rows[(NR_OPENAT, 0)].count == 6


def test_a_full_map_counts_the_rest_in_the_overflow(metrics_calls: Path) -> None:
    with Metrics("containers") as big, Metrics("containers", max_entries=3) as tiny:

        def add(ns: int) -> None:
            big.add_namespace(ns)
            tiny.add_namespace(ns)

        run_in_namespace([str(metrics_calls), "mix", "10", "4", "50"], before_release=add)
        full, small = big.snapshot(), tiny.snapshot()
    assert full.overflow.count == 0 and full.entries > 3
    assert small.entries == 3
    assert small.overflow.count > 0
    # nothing lost: the series kept plus the overflow are every call
    assert small.calls == full.calls
    assert sum(small.overflow.buckets) == small.overflow.count
    assert small.overflow.total_ns + sum(r.total_ns for r in small.rows) > 0


def test_prune_and_remove_series(node: Metrics, metrics_calls: Path) -> None:
    ns = run_in_namespace([str(metrics_calls), "mix", "3", "1", "5"])
    before = of_ns(node.snapshot(), ns)
    assert (NR_GETPPID, 0) in before
    assert node.remove_series([(ns, NR_GETPPID, 0), (ns, NR_GETPPID, 99)]) == 1
    assert (NR_GETPPID, 0) not in of_ns(node.snapshot(), ns)
    assert node.prune_namespace(ns) == len(before) - 1
    assert of_ns(node.snapshot(), ns) == {}


def test_the_tracer_itself_is_not_counted(node: Metrics) -> None:
    me = os.stat("/proc/self/ns/pid").st_ino

    def getppids() -> int:
        r = of_ns(node.snapshot(), me).get((NR_GETPPID, 0))
        return 0 if r is None else r.count

    before = getppids()
    for _ in range(2000):
        os.getppid()
    # other host processes may call getppid now and then; this one made 2000
    assert getppids() - before < 2000


def _my_programs(prefix: str) -> set[int]:
    """Ids of loaded BPF programs named ``prefix...`` this process holds an fd of."""
    held: set[int] = set()
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                text = f.read()
        except OSError:
            continue
        held |= {int(line.split()[1]) for line in text.splitlines() if line.startswith("prog_id:")}
    out = subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True
    ).stdout
    return {
        int(p["id"])
        for p in json.loads(out)
        if int(p["id"]) in held and p.get("name", "").startswith(prefix)
    }


def _loaded(ids: set[int]) -> set[int]:
    out = subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True
    ).stdout
    return ids & {int(p["id"]) for p in json.loads(out)}


def _wait_unloaded(ids: set[int], timeout: float = 10.0) -> None:
    # the kernel frees a closed program after a grace period
    end = time.monotonic() + timeout
    while _loaded(ids):
        assert time.monotonic() < end, f"programs {sorted(_loaded(ids))} still loaded after close"
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool")
def test_metrics_off_leaves_nothing_loaded() -> None:
    with Metrics("node", latency=False):
        # count-only: the sys_exit hook and the thread-exit hook
        assert len(_my_programs("syshub_mx_")) == 2
    m = Metrics("node")
    ids = _my_programs("syshub_mx_")
    # latency: + the entry hook
    assert m.attached and len(ids) == 3
    m.detach()
    assert not m.attached
    m.attach()
    m.close()
    assert m.closed
    _wait_unloaded(ids)
    with BareHooks():
        bare = _my_programs("syshub_mx_bare")
        assert len(bare) == 2
    _wait_unloaded(bare)


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        Metrics("node", max_entries=0)
    with pytest.raises(ValueError, match="mode"):
        Metrics("cluster")  # type: ignore[arg-type]
