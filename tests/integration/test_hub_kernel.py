"""The Hub on the real kernel probe: per-job filters survive the deletion of
other jobs, exact per-job sampling and accounting, the kernel filter map always
equals what live job contexts need, and slow subscribers lose only their own
events."""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support.hub_env import NR, balanced, totals
from support.hub_kernel import Collector, container, getppid_box, kernel_filters, run_job
from syshub import Hub, Job, SubscriberStats, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf


# --------------------------------------------------------------------------- scaffolding


def hostname_opens(evs: list[Any], pid_ns: int) -> int:
    return sum(
        1
        for e in evs
        if e.pid_ns == pid_ns
        and e.syscall == "openat"
        and e.args.get("filename") == "/etc/hostname"
    )


# --------------------------------------------------------------------------- issue scenario

WORKLOAD = ["sh", "-c", "while read x; do cat /etc/hostname >/dev/null; done"]


def test_deleting_a_job_keeps_what_another_job_needs(hub_obs: tuple[Hub, LocalObserver]) -> None:
    """Job A traces openat+close on containers one and two, job B openat on
    container two. Deleting A must not blind B; container three, selected by
    nobody, never reaches anyone."""
    hub, obs = hub_obs
    a = Trace.new("a", ["openat", "close"], labels="app=demo", hosts=["one", "two"])
    b = Trace.new("b", ["openat"], labels="app=demo", hosts=["two"])
    run_job(hub, a)
    run_job(hub, b)
    col_a, col_b = Collector(hub.subscribe(a)), Collector(hub.subscribe(b))
    col_all = Collector(hub.subscribe_path(()))
    kids = [NamespacedProcess(WORKLOAD, stdin=subprocess.PIPE) for _ in range(3)]
    try:
        c1, c2, c3 = (container(n, k) for n, k in zip(("one", "two", "three"), kids, strict=True))
        ns1, ns2, ns3 = c1.pid_ns, c2.pid_ns, c3.pid_ns
        assert len({ns1, ns2, ns3}) == 3
        for c in (c1, c2, c3):
            obs.start_container(c)
        op, cl = NR["openat"], NR["close"]
        assert kernel_filters(hub) == {(ns1, op): 1, (ns1, cl): 1, (ns2, op): 1, (ns2, cl): 1}
        assert kernel_filters(hub) == hub.desired_filters()
        for k in kids:
            k.release()

        def rounds(n: int) -> None:
            for k in kids:
                stdin = k._relay.stdin
                assert stdin is not None
                stdin.write(b"x\n" * n)
                stdin.flush()

        rounds(2)
        col_a.wait(lambda e: hostname_opens(e, ns1) >= 2 and hostname_opens(e, ns2) >= 2)
        col_b.wait(lambda e: hostname_opens(e, ns2) >= 2)
        time.sleep(0.3)  # nothing more may arrive
        ev_a, ev_b = col_a.snapshot(), col_b.snapshot()
        assert hostname_opens(ev_a, ns1) == 2 and hostname_opens(ev_a, ns2) == 2
        assert hostname_opens(ev_b, ns2) == 2
        assert {e.pid_ns for e in ev_a} == {ns1, ns2}
        assert {e.syscall for e in ev_a} == {"openat", "close"}
        for ns in (ns1, ns2):
            assert any(e.pid_ns == ns and e.syscall == "close" for e in ev_a)
        assert {(e.pid_ns, e.syscall) for e in ev_b} == {(ns2, "openat")}
        for e in ev_a + ev_b:
            assert e.container is not None and e.container.pid_ns == e.pid_ns
            assert e.container.name == {ns1: "one", ns2: "two"}[e.pid_ns]
        # B saw every openat of container two that A saw, as the same objects.
        a_ops2 = [e for e in ev_a if e.pid_ns == ns2 and e.syscall == "openat"]
        assert len(a_ops2) == len(ev_b) and all(x is y for x, y in zip(a_ops2, ev_b, strict=True))

        hub.delete_trace(a)
        assert kernel_filters(hub) == {(ns2, op): 1} == hub.desired_filters()
        assert hub.probe is not None
        assert all(f.syscall != "close" for f in hub.probe.filters())
        assert all(nr != cl for nr, _ in hub.probe.hooked())
        n_a = len(col_a.snapshot())

        rounds(3)
        col_b.wait(lambda e: hostname_opens(e, ns2) >= 5)
        time.sleep(0.3)
        ev_b = col_b.snapshot()
        assert hostname_opens(ev_b, ns2) == 5
        assert {(e.pid_ns, e.syscall) for e in ev_b} == {(ns2, "openat")}
        assert len(col_a.snapshot()) == n_a  # the deleted job gets nothing more
        # Container three reached nobody: no filter, no kernel key, no event.
        everything = col_all.snapshot()
        assert ns3 not in {e.pid_ns for e in everything}
        assert ns3 not in {k.pid_ns for k in hub.probe.stats().keys}
        assert hostname_opens(everything, ns1) == 2 and hostname_opens(everything, ns2) == 5
        hub.delete_trace(b)
        assert kernel_filters(hub) == {}
    finally:
        for k in kids:
            if k._relay.stdin is not None:
                k._relay.stdin.close()
        for k in kids:
            try:
                k.wait(timeout=10)
            except subprocess.TimeoutExpired:
                k.kill()
                k.wait()


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(("rates", "kernel_rate"), [((1, 2, 3, 4), 1), ((2, 4, 6), 2)])
def test_rates_on_one_key_are_exact(
    hub_obs: tuple[Hub, LocalObserver], known_calls: Path, rates: tuple[int, ...], kernel_rate: int
) -> None:
    hub, obs = hub_obs
    n = 1200
    traces = {r: Trace.new(f"r{r}", ["getppid"], labels="app=demo", sample_rate=r) for r in rates}
    cols = {}
    for r, t in traces.items():
        run_job(hub, t)
        cols[r] = Collector(hub.subscribe(t))
    with getppid_box(known_calls) as (child, calls):
        c = container("loop", child)
        obs.start_container(c)
        key = (child.pid_ns, NR["getppid"])
        assert kernel_filters(hub) == {key: kernel_rate} == hub.desired_filters()
        child.release()
        calls(n)
        for r, col in cols.items():
            col.wait(lambda e, r=r: len(e) >= n // r)
        time.sleep(0.2)
        for r, col in cols.items():
            evs = col.snapshot()
            assert [e.seq for e in evs] == list(range(r, n + 1, r))
            assert {e.pid_ns for e in evs} == {child.pid_ns}
        assert hub.probe is not None
        k = hub.probe.stats().key(*key)
        assert k is not None and k.matched == n
        assert k.sampled_out == n - n // kernel_rate
        assert k.delivered == n // kernel_rate and k.dropped == 0
        stats = hub.stats().jobs
        for r, t in traces.items():
            js = stats[t.status.job_id]
            assert totals(js) == (n, n // r, 0, n - n // r)
            assert balanced(js)
        # After the last context of the key goes, the filter is gone and the
        # accounting is frozen: later calls are nobody's.
        obs.stop_container(c)
        assert kernel_filters(hub) == {}
        calls(10)
        time.sleep(0.2)
    stats = hub.stats().jobs
    for r, t in traces.items():
        assert stats[t.status.job_id].matched == n
        assert stats[t.status.job_id].delivered == n // r
        assert len(cols[r].snapshot()) == n // r


def test_slow_subscriber_loses_only_its_own_events(
    hub_obs: tuple[Hub, LocalObserver], known_calls: Path
) -> None:
    hub, obs = hub_obs
    n = 3000
    t = Trace.new("slow", ["getppid"], labels="app=demo")
    run_job(hub, t)
    slow = hub.subscribe(t, maxsize=8)  # never read while the calls happen
    slow_oldest = hub.subscribe(t, maxsize=8, overflow="drop_oldest")
    fast = Collector(hub.subscribe(t))
    with getppid_box(known_calls) as (child, calls):
        c = container("loop", child)
        obs.start_container(c)
        child.release()
        calls(n)
        fast.wait(lambda e: len(e) >= n)
        time.sleep(0.2)
        evs = fast.snapshot()
        assert hub.probe is not None
        (k,) = [k for k in hub.probe.stats().keys if k.pid_ns == child.pid_ns]
        obs.stop_container(c)
    assert [e.seq for e in evs] == list(range(1, n + 1))
    job_id = t.status.job_id
    assert slow.stats() == SubscriberStats(job_id, delivered=0, dropped=n - 8, queued=8)
    assert [e.seq for e in slow.get_batch(100, timeout=0)] == list(range(1, 9))
    assert [e.seq for e in slow_oldest.get_batch(100, timeout=0)] == list(range(n - 7, n + 1))
    assert slow_oldest.dropped == n - 8
    # The reader never stalled: nothing was lost in the kernel ring.
    assert k.matched == n and k.delivered == n and k.dropped == 0
    js = hub.stats().jobs[job_id]
    assert totals(js) == (n, n, 0, 0)
    assert [s.dropped for s in js.subscribers] == [n - 8, n - 8, 0]


# --------------------------------------------------------------------------- property


SYSCALL_NAMES = ("getppid", "openat", "close", "read")
NS_BASE = 1_000_000  # no real pid namespace has so small an inode number


@dataclass
class ModelJob:
    trace: Trace
    job: Job
    nrs: frozenset[int]
    rate: int
    app: str | None
    hosts: tuple[str, ...]
    live: bool = True

    def selects(self, c: Container) -> bool:
        return (
            c.namespace == "default"
            and (self.app is None or c.labels.get("app") == self.app)
            and (not self.hosts or c.name in self.hosts)
        )


@dataclass
class Model:
    """What the kernel should hold, computed independently of the hub."""

    jobs: list[ModelJob] = field(default_factory=list)
    live: dict[str, Container] = field(default_factory=dict)

    def members(self, mj: ModelJob) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        if mj.live:
            for c in self.live.values():
                if mj.selects(c):
                    out.setdefault(c.pid_ns, set()).add(c.id)
        return out

    def desired(self) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for mj in self.jobs:
            for ns in self.members(mj):
                for nr in mj.nrs:
                    out[(ns, nr)] = math.gcd(out.get((ns, nr), 0), mj.rate)
        return out


pool_box = st.tuples(
    st.integers(0, 3),  # pid namespace (containers may share one)
    st.sampled_from(["web", "db"]),
    st.sampled_from(["a", "b"]),
    st.sampled_from(["default", "default", "default", "other"]),
)
create = st.tuples(
    st.just("create"),
    st.frozensets(st.sampled_from(SYSCALL_NAMES), min_size=1, max_size=3),
    st.integers(1, 6),
    st.sampled_from([None, None, "a", "b"]),
    st.sampled_from([(), ("web",)]),
)
# Weighted so that sequences build up many jobs, containers and shared keys.
KINDS = ("start", "create", "start", "create", "start", "delete", "stop")
op = st.sampled_from(KINDS).flatmap(
    lambda k: create if k == "create" else st.tuples(st.just(k), st.integers(0, 15))
)

# Shared pid namespaces, label and host selectors, rates with changing gcds, deletes.
RICH_POOL = [
    (0, "web", "a", "default"),
    (0, "db", "b", "default"),
    (1, "web", "a", "default"),
    (2, "db", "a", "other"),
    (3, "web", "b", "default"),
]
RICH_OPS: list[tuple[Any, ...]] = [
    ("create", frozenset({"getppid", "openat"}), 2, None, ()),
    ("create", frozenset({"getppid"}), 3, "a", ()),
    ("start", 0),
    ("start", 1),
    ("start", 2),
    ("start", 3),
    ("create", frozenset({"openat", "close"}), 4, None, ("web",)),
    ("start", 4),
    ("create", frozenset({"getppid", "read"}), 6, "b", ()),
    ("stop", 0),
    ("delete", 0),
    ("start", 0),
    ("stop", 1),
    ("delete", 1),
    ("stop", 2),
    ("delete", 2),
    ("start", 1),
    ("stop", 4),
]


def test_kernel_filter_map_equals_live_contexts_property(
    hub_obs: tuple[Hub, LocalObserver],
) -> None:
    hub, obs = hub_obs
    examples = [0]

    def check(model: Model) -> None:
        kernel = kernel_filters(hub)
        assert kernel == hub.desired_filters() == model.desired()
        for mj in model.jobs:
            if mj.live:
                assert mj.job._ns_members == model.members(mj)
            else:
                assert hub._contexts[mj.job.job_id] == {}
                for bucket in hub._nsmap.values():
                    assert all(ctx.job is not mj.job for ctx in bucket)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(pool_box, min_size=2, max_size=5), st.lists(op, min_size=6, max_size=20))
    @example(RICH_POOL, RICH_OPS)
    def run(boxes: list[tuple[int, str, str, str]], ops: list[tuple[Any, ...]]) -> None:
        examples[0] += 1
        pool = [
            Container(
                id=f"x{examples[0]}-{i}",
                name=name,
                pid=NS_BASE + ns,
                pid_ns=NS_BASE + ns,
                pod=f"pod{ns}",
                namespace=namespace,
                labels={"app": app},
            )
            for i, (ns, name, app, namespace) in enumerate(boxes)
        ]
        model = Model()
        try:
            for step in ops:
                kind = step[0]
                if kind == "create":
                    _, names, rate, app, hosts = step
                    t = Trace.new(
                        f"p{examples[0]}-{len(model.jobs)}",
                        sorted(names),
                        labels=None if app is None else {"app": app},
                        hosts=hosts,
                        sample_rate=rate,
                    )
                    job = run_job(hub, t)
                    nrs = frozenset(NR[n] for n in names)
                    model.jobs.append(ModelJob(t, job, nrs, rate, app, hosts))
                elif kind == "delete":
                    if model.jobs:
                        mj = model.jobs[step[1] % len(model.jobs)]
                        hub.delete_trace(mj.trace)
                        mj.live = False
                else:
                    c = pool[step[1] % len(pool)]
                    if kind == "start":
                        obs.start_container(c)
                        model.live[c.id] = c
                    else:
                        obs.stop_container(c)
                        model.live.pop(c.id, None)
                check(model)
        finally:
            # Clean up: no job and no container survives into the next example.
            for mj in model.jobs:
                if mj.live:
                    hub.delete_trace(mj.trace)
                    mj.live = False
            for c in list(model.live.values()):
                obs.stop_container(c)
            model.live.clear()
        check(model)
        assert kernel_filters(hub) == {}

    run()
    assert examples[0] >= 30
