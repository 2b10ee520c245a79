"""The Hub without privileges: exact kernel filters (refcounting, gcd rates),
per-job sampling, path streams, subscriber overflow, callbacks and async
iteration. The kernel is a :class:`FakeFilters`; events are fed by hand with
``hub.route``."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syshub import syscalls
from syshub.errors import HubError
from syshub.hub.service import FakeFilters, Hub, HubConfig, TraceEvent
from syshub.hub.jobs import Job
from syshub.hub.subscriptions import Overflow, Subscription
from syshub.topology import LocalObserver
from syshub.topology.base import Container, EmitFn
from syshub.spec.trace import Trace, TraceState

NR = {name: syscalls.lookup(name).nr for name in ("getppid", "openat", "close", "read")}


# --------------------------------------------------------------------------- scaffolding


class _Counter:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self.value = 0

    def incr(self) -> None:
        with self._cv:
            self.value += 1
            self._cv.notify_all()

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        with self._cv:
            ok = self._cv.wait_for(lambda: self.value >= n, timeout)
        assert ok, f"only {self.value} of {n} observers became ready"


class _ReadyStop:
    """Stands in for the stop event of ``LocalObserver.run``: its first
    ``is_set()`` call comes after the observer registered its listener and
    emitted its initial containers, which is when the observer is ready."""

    def __init__(self, stop: threading.Event, on_ready: Callable[[], None]) -> None:
        self._stop = stop
        self._on_ready: Callable[[], None] | None = on_ready

    def is_set(self) -> bool:
        if self._on_ready is not None:
            on_ready, self._on_ready = self._on_ready, None
            on_ready()
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)


class ReadyObserver(LocalObserver):
    """A :class:`LocalObserver` that counts copies that are ready, so a test
    knows when a new job follows container events (no sleeps)."""

    def __init__(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
        _shared: Any = None,
        _ready: _Counter | None = None,
    ) -> None:
        super().__init__(namespace, label_selector, field_selector, _shared=_shared)
        self.ready = _ready if _ready is not None else _Counter()

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> ReadyObserver:
        return ReadyObserver(
            namespace, label_selector, field_selector, _shared=self._shared, _ready=self.ready
        )

    def run(self, emit: EmitFn, stop: threading.Event) -> None:
        super().run(emit, _ReadyStop(stop, self.ready.incr))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FakeEvent:
    """What the hub reads from a kernel event."""

    pid_ns: int
    nr: int
    seq: int
    syscall: str

    def to_dict(self) -> dict[str, Any]:
        return {"syscall": self.syscall, "pid_ns": self.pid_ns, "seq": self.seq}

    def to_text(self) -> str:
        return f"{self.syscall}() #{self.seq}"


def events(pid_ns: int, name: str, seqs: Iterator[int] | range | list[int]) -> list[FakeEvent]:
    return [FakeEvent(pid_ns, NR[name], s, name) for s in seqs]


def box(
    cid: str,
    pid_ns: int,
    *,
    name: str | None = None,
    pod: str = "p1",
    namespace: str = "default",
    app: str = "demo",
) -> Container:
    return Container(
        id=cid,
        name=name or cid,
        pid=pid_ns % 100_000,
        pid_ns=pid_ns,
        pod=pod,
        namespace=namespace,
        labels={"app": app},
    )


@dataclass
class Env:
    hub: Hub
    obs: ReadyObserver
    filters: FakeFilters

    def run(self, trace: Trace) -> Job:
        """Run ``trace`` and wait until its job follows container events."""
        n = self.obs.ready.value
        job = self.hub.run_trace(trace)
        self.obs.ready.wait_for(n + 1)
        return job

    def check(self, expected: dict[tuple[int, int], int] | None = None) -> None:
        """The fake kernel holds exactly what live contexts need."""
        desired = self.hub.desired_filters()
        assert self.filters.current() == desired
        if expected is not None:
            assert desired == expected


def make_env() -> Env:
    obs = ReadyObserver()
    filters = FakeFilters()
    hub = Hub(HubConfig(), obs, filters=filters)
    hub.start()
    obs.ready.wait_for(1)  # the hub's own topology follower
    return Env(hub, obs, filters)


@pytest.fixture
def env() -> Iterator[Env]:
    e = make_env()
    try:
        yield e
    finally:
        e.hub.stop()
    assert e.filters.current() == {}


def demo(name: str, calls: list[str], **kw: Any) -> Trace:
    kw.setdefault("labels", "app=demo")
    return Trace.new(name, calls, **kw)


def drain(sub: Subscription) -> list[Any]:
    return sub.get_batch(1 << 20, timeout=0)


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


# --------------------------------------------------------------------------- refcounting


def test_two_jobs_share_a_key_refcounted(env: Env) -> None:
    a = demo("a", ["getppid", "openat"])
    b = demo("b", ["getppid"])
    env.run(a)
    env.run(b)
    env.check({})
    env.obs.start_container(box("c1", 1001))
    g, o = (1001, NR["getppid"]), (1001, NR["openat"])
    env.check({g: 1, o: 1})
    env.hub.delete_trace(a)
    env.check({g: 1})
    env.hub.delete_trace(b)
    env.check({})
    # Nothing is left behind for deleted jobs.
    assert env.hub._nsmap == {} and env.hub._routes == {}


def test_delete_order_does_not_matter(env: Env) -> None:
    a = demo("a", ["getppid", "openat"])
    b = demo("b", ["getppid"])
    env.run(a)
    env.run(b)
    env.obs.start_container(box("c1", 1001))
    env.hub.delete_trace(b)
    env.check({(1001, NR["getppid"]): 1, (1001, NR["openat"]): 1})
    env.hub.delete_trace(a)
    env.check({})


def test_duplicate_container_start_is_idempotent(env: Env) -> None:
    t = demo("a", ["getppid", "openat"])
    job = env.run(t)
    c = box("c1", 1001)
    env.obs.start_container(c)
    expected = {(1001, NR["getppid"]): 1, (1001, NR["openat"]): 1}
    env.check(expected)
    ops = env.filters.ops
    ctxs = dict(env.hub._contexts[job.job_id])
    env.obs.start_container(c)
    env.obs.start_container(c)
    env.check(expected)
    assert env.filters.ops == ops
    assert env.hub._contexts[job.job_id] == ctxs
    assert [len(b) for b in env.hub._nsmap.values()] == [1, 1]
    # One stop undoes any number of starts of the same container.
    env.obs.stop_container(c)
    env.check({})
    assert job.monitored_hosts() == [] and job.monitored_hosts(all=True) == ["c1.p1"]


def test_containers_sharing_a_pid_namespace(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    c1 = box("c1", 1001, pod="p1")
    c2 = box("c2", 1001, pod="p1")
    env.obs.start_container(c1)
    env.obs.start_container(c2)
    key = (1001, NR["getppid"])
    env.check({key: 1})
    ops = env.filters.ops
    env.obs.stop_container(c1)
    env.check({key: 1})
    assert env.filters.ops == ops  # the filter was never touched
    env.obs.stop_container(c2)
    env.check({})
    # Started again after the last stop: the filter comes back.
    env.obs.start_container(c2)
    env.check({key: 1})


def test_start_after_delete_adds_nothing(env: Env) -> None:
    t = demo("a", ["getppid"])
    job = env.run(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.delete_trace(t)
    env.check({})
    ops = env.filters.ops
    env.obs.start_container(box("c2", 1002))
    env.obs.start_container(box("c1", 1001))
    env.check({})
    assert env.filters.ops == ops
    assert env.hub._contexts[job.job_id] == {}
    with pytest.raises(HubError, match="stopped"):
        env.hub.push_job(job, 1003, NR["getppid"])
    env.check({})


def test_delete_unknown_trace_raises(env: Env) -> None:
    never_run = demo("nope", ["getppid"])
    with pytest.raises(HubError, match="job not found"):
        env.hub.delete_trace(never_run)
    never_run.update_status(job_id="nope-12345678")
    with pytest.raises(HubError, match="job not found: `nope-12345678`"):
        env.hub.delete_trace(never_run)
    with pytest.raises(HubError):
        env.hub.job("nope-12345678")


def test_trace_status_lifecycle(env: Env) -> None:
    t = demo("a", ["getppid"])
    assert t.status.state is TraceState.PENDING
    job = env.run(t)
    st_ = t.status
    assert st_.state is TraceState.RUNNING and st_.job_id == job.job_id
    assert st_.start_time is not None and st_.completion_time is None
    assert env.hub.job(job.job_id) is job
    with pytest.raises(HubError, match="already running"):
        env.hub.run_job(job)
    env.hub.delete_trace(t)
    done = t.status
    assert done.state is TraceState.COMPLETE
    assert done.completion_time is not None and done.completion_time >= st_.start_time
    assert job.stopped and job.wait(2)
    # Deleting again is a no-op, not an error, and keeps the first completion time.
    env.hub.delete_trace(t)
    assert t.status.completion_time == done.completion_time
    assert env.hub.stats()["jobs"][job.job_id]["state"] == "Complete"


def test_duration_completes_the_trace(env: Env) -> None:
    t = demo("d", ["getppid"], duration=0.3)
    job = env.run(t)
    env.obs.start_container(box("c1", 1001))
    env.check({(1001, NR["getppid"]): 1})
    assert t.status.state is TraceState.RUNNING
    assert job.wait(timeout=5)
    s = t.status
    assert s.state is TraceState.COMPLETE
    assert s.start_time is not None and s.completion_time is not None
    assert s.completion_time - s.start_time >= timedelta(seconds=0.29)
    env.check({})


# --------------------------------------------------------------------------- gcd rates


@pytest.mark.parametrize(
    ("rates", "kernel", "after_removing_first"),
    [((2, 3), 1, 3), ((4, 6), 2, 6), ((6, 4), 2, 4), ((3, 6, 9), 3, 3), ((5, 5), 5, 5)],
)
def test_kernel_rate_is_gcd(
    env: Env, rates: tuple[int, ...], kernel: int, after_removing_first: int
) -> None:
    traces = [demo(f"r{r}-{i}", ["getppid"], sample_rate=r) for i, r in enumerate(rates)]
    for t in traces:
        env.run(t)
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["getppid"])
    env.check({key: kernel})
    env.hub.delete_trace(traces[0])
    env.check({key: after_removing_first})
    for t in traces[1:]:
        env.hub.delete_trace(t)
    env.check({})


def test_rate_follows_jobs_added_later(env: Env) -> None:
    key = (1001, NR["getppid"])
    env.obs.start_container(box("c1", 1001))
    t4 = demo("r4", ["getppid"], sample_rate=4)
    env.run(t4)  # the container already runs: the job's observer reports it
    env.check({key: 4})
    t6 = demo("r6", ["getppid"], sample_rate=6)
    env.run(t6)
    env.check({key: 2})
    t3 = demo("r3", ["getppid"], sample_rate=3)
    env.run(t3)
    env.check({key: 1})
    env.hub.delete_trace(t4)
    env.check({key: 3})
    env.hub.delete_trace(t3)
    env.check({key: 6})


# --------------------------------------------------------------------------- property


SYSCALL_NAMES = ("getppid", "openat", "close", "read")


@dataclass(frozen=True)
class PoolBox:
    ns_index: int
    name: str
    app: str
    namespace: str


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
    """What the hub should want, computed independently of the hub."""

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


pool_box = st.builds(
    PoolBox,
    ns_index=st.integers(0, 3),
    name=st.sampled_from(["web", "db"]),
    app=st.sampled_from(["a", "b"]),
    namespace=st.sampled_from(["default", "default", "default", "other"]),
)
create = st.tuples(
    st.just("create"),
    st.frozensets(st.sampled_from(SYSCALL_NAMES), min_size=1, max_size=3),
    st.integers(1, 6),
    st.sampled_from([None, None, "a", "b"]),
    st.sampled_from([(), ("web",), ("db", "web")]),
)
# Weighted so that sequences build up many jobs, containers and shared keys.
KINDS = ("start", "create", "start", "create", "start", "delete", "stop")
op = st.sampled_from(KINDS).flatmap(
    lambda k: create if k == "create" else st.tuples(st.just(k), st.integers(0, 15))
)


def apply_op(
    step: tuple[Any, ...],
    model: Model,
    pool: list[Container],
    run: Callable[[Trace], Job],
    hub: Hub,
    obs: LocalObserver,
) -> None:
    kind = step[0]
    if kind == "create":
        _, names, rate, app, hosts = step
        t = Trace.new(
            f"j{len(model.jobs)}",
            sorted(names),
            labels=None if app is None else {"app": app},
            hosts=hosts,
            sample_rate=rate,
        )
        job = run(t)
        nrs = frozenset(NR[n] for n in names)
        model.jobs.append(ModelJob(t, job, nrs, rate, app, hosts))
    elif kind == "delete":
        if model.jobs:
            mj = model.jobs[step[1] % len(model.jobs)]
            hub.delete_trace(mj.trace)  # a second delete of a job is a no-op
            mj.live = False
    else:
        c = pool[step[1] % len(pool)]
        if kind == "start":
            obs.start_container(c)
            model.live[c.id] = c
        else:
            obs.stop_container(c)
            model.live.pop(c.id, None)


def check_model(hub: Hub, model: Model, current: Callable[[], dict[tuple[int, int], int]]) -> None:
    desired = hub.desired_filters()
    assert current() == desired
    assert desired == model.desired()
    for mj in model.jobs:
        ids = mj.job.job_id
        if mj.live:
            assert mj.job._ns_members == model.members(mj)
        else:
            assert hub._contexts[ids] == {}
            for bucket in hub._nsmap.values():
                assert all(ctx.job is not mj.job for ctx in bucket)
            for ctxs in hub._routes.values():
                assert all(ctx.job is not mj.job for ctx in ctxs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pool_box, min_size=1, max_size=6), st.lists(op, min_size=2, max_size=30))
def test_filters_equal_live_contexts_property(
    boxes: list[PoolBox], ops: list[tuple[Any, ...]]
) -> None:
    pool = [
        box(f"c{i}", 5000 + b.ns_index, name=b.name, app=b.app, namespace=b.namespace)
        for i, b in enumerate(boxes)
    ]
    e = make_env()
    model = Model()
    try:
        for step in ops:
            apply_op(step, model, pool, e.run, e.hub, e.obs)
            check_model(e.hub, model, e.filters.current)
    finally:
        e.hub.stop()
    assert e.filters.current() == {}
    assert e.hub.desired_filters() == {}


# --------------------------------------------------------------------------- sampling


def test_exact_sampling_per_job(env: Env) -> None:
    n = 120
    traces = {r: demo(f"r{r}", ["getppid"], sample_rate=r) for r in (1, 2, 3, 4)}
    subs = {}
    for r, t in traces.items():
        env.run(t)
        subs[r] = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["getppid"])
    env.check({key: 1})
    env.hub.route(events(1001, "getppid", range(1, n + 1)))
    for r, sub in subs.items():
        got = [ev.seq for ev in drain(sub)]
        assert got == list(range(r, n + 1, r))
    # Per job accounting: the fake kernel matched n calls of the key.
    env.filters.counts[key] = n
    stats = env.hub.stats()["jobs"]
    for r, t in traces.items():
        total = stats[t.status.job_id]["total"]
        assert total == {
            "matched": n,
            "delivered": n // r,
            "dropped": 0,
            "sampled_out": n - n // r,
        }


def test_ring_drops_are_counted_per_job(env: Env) -> None:
    n = 24
    lost = {4, 8, 9}  # records the "kernel" could not deliver (ring full)
    traces = {r: demo(f"r{r}", ["getppid"], sample_rate=r) for r in (1, 2, 3, 4)}
    subs = {}
    for r, t in traces.items():
        env.run(t)
        subs[r] = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(events(1001, "getppid", [s for s in range(1, n + 1) if s not in lost]))
    env.filters.counts[(1001, NR["getppid"])] = n
    stats = env.hub.stats()["jobs"]
    for r, t in traces.items():
        want = [s for s in range(r, n + 1, r) if s not in lost]
        assert [ev.seq for ev in drain(subs[r])] == want
        total = stats[t.status.job_id]["total"]
        assert total["matched"] == n
        assert total["delivered"] == len(want)
        assert total["dropped"] == len([s for s in lost if s % r == 0])
        assert total["matched"] == total["delivered"] + total["dropped"] + total["sampled_out"]


def test_late_job_sees_only_later_calls(env: Env) -> None:
    key = (1001, NR["getppid"])
    early = demo("early", ["getppid"])
    env.run(early)
    env.obs.start_container(box("c1", 1001))
    env.filters.counts[key] = 10  # the kernel has already counted 10 calls
    late = demo("late", ["getppid"], sample_rate=2)
    env.run(late)
    s_early, s_late = env.hub.subscribe(early), env.hub.subscribe(late)
    # In-flight records from before the late job started are not its calls.
    env.hub.route(events(1001, "getppid", range(5, 21)))
    assert [e.seq for e in drain(s_early)] == list(range(5, 21))
    assert [e.seq for e in drain(s_late)] == [12, 14, 16, 18, 20]
    env.filters.counts[key] = 20
    total = env.hub.stats()["jobs"][late.status.job_id]["total"]
    assert total == {"matched": 10, "delivered": 5, "dropped": 0, "sampled_out": 5}


def test_in_flight_events_after_delete_reach_only_live_jobs(env: Env) -> None:
    a = demo("a", ["getppid"])
    b = demo("b", ["getppid", "openat"])
    env.run(a)
    env.run(b)
    sa, sb = env.hub.subscribe(a), env.hub.subscribe(b)
    root = env.hub.subscribe_path(())
    env.obs.start_container(box("c1", 1001))
    env.hub.delete_trace(a)
    # Records the kernel emitted before the filter changed are still routed.
    env.hub.route(events(1001, "getppid", range(1, 6)) + events(1001, "openat", [1, 2]))
    assert drain(sa) == []
    assert [(e.syscall, e.seq) for e in drain(sb)] == [("getppid", s) for s in range(1, 6)] + [
        ("openat", 1),
        ("openat", 2),
    ]
    assert len(drain(root)) == 7
    env.hub.delete_trace(b)
    env.hub.route(events(1001, "getppid", range(6, 9)) + events(1001, "openat", [3]))
    assert drain(sa) == [] and drain(sb) == [] and drain(root) == []
    assert env.hub.unrouted == 4


def test_unrouted_events_are_counted_not_delivered(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    sub = env.hub.subscribe(t)
    root = env.hub.subscribe_path(())
    env.obs.start_container(box("c1", 1001))
    env.obs.start_container(box("x", 1002, app="other"))  # selected by nobody
    env.hub.route(events(1002, "getppid", range(1, 6)) + events(1001, "openat", [1]))
    assert drain(sub) == [] and drain(root) == []
    assert env.hub.unrouted == 6 and env.hub.routed == 0


# --------------------------------------------------------------------------- paths


def test_path_subscriptions_receive_exactly_their_subtree(env: Env) -> None:
    boxes = {
        "a": box("a", 2001, name="c1", pod="p1"),
        "b": box("b", 2002, name="c2", pod="p1"),  # sibling container
        "c": box("c", 2003, name="c1", pod="p2"),  # sibling pod, same container name
        "d": box("d", 2004, name="c1", pod="p1", namespace="other"),  # other namespace
    }
    env.run(demo("t-default", ["getppid", "openat"]))
    env.run(demo("t-other", ["getppid", "openat"], namespace="other"))
    for c in boxes.values():
        env.obs.start_container(c)
    by_ns = {c.pid_ns: c for c in boxes.values()}
    fed = []
    for c in boxes.values():
        fed += events(c.pid_ns, "getppid", range(1, 4)) + events(c.pid_ns, "openat", [1, 2])
    paths: list[tuple[str, ...]] = [
        (),
        ("default",),
        ("default", "p1"),
        ("default", "p1", "c1"),
        ("default", "p1", "c1", "getppid"),
        ("default", "p1", "c1", "sys_getppid"),
        ("default", "", "c1"),  # an empty element ends the prefix
        ("default", "p2"),
        ("other", "p1", "c1", "openat"),
        ("default", "p9"),
    ]

    def below(path: tuple[str, ...], ev: FakeEvent) -> bool:
        c = by_ns[ev.pid_ns]
        full = (c.namespace, c.pod, c.name, ev.syscall)
        prefix = []
        for i, p in enumerate(path):
            if not p:
                break
            prefix.append(syscalls.canonical_name(p) if i == 3 else p)
        return full[: len(prefix)] == tuple(prefix)

    subs = [env.hub.subscribe_path(p) for p in paths]
    got_cb: dict[int, list[tuple[str, Any]]] = {i: [] for i in range(len(paths))}
    lock = threading.Lock()

    def cb_for(i: int) -> Callable[[str, TraceEvent], None]:
        def cb(name: str, ev: TraceEvent) -> None:
            with lock:
                got_cb[i].append((name, ev.event))

        return cb

    unsubs = [env.hub.attach_path(f"cb{i}", p, cb_for(i)) for i, p in enumerate(paths)]
    env.hub.route(fed)
    for i, (p, sub) in enumerate(zip(paths, subs, strict=True)):
        want = [ev for ev in fed if below(p, ev)]
        got = drain(sub)
        assert [tev.event for tev in got] == want, p
        for tev in got:
            assert tev.path == (
                tev.container.namespace,
                tev.container.pod,
                tev.container.name,
                tev.syscall,
            )
            assert by_ns[tev.pid_ns] == tev.container
        assert wait_until(lambda i=i, want=want: len(got_cb[i]) >= len(want)), p
    time.sleep(0.05)
    for i, p in enumerate(paths):
        want = [ev for ev in fed if below(p, ev)]
        with lock:
            assert got_cb[i] == [(f"cb{i}", ev) for ev in want], p
    # Sanity of the expectations themselves.
    assert len([ev for ev in fed if below((), ev)]) == 20
    assert len([ev for ev in fed if below(("default", "p1", "c1", "getppid"), ev)]) == 3
    assert len([ev for ev in fed if below(("default", "p9"), ev)]) == 0
    for u in unsubs:
        u()
    assert all(s.closed is False for s in subs)


def test_path_subscription_rejects_too_long_paths(env: Env) -> None:
    with pytest.raises(HubError):
        env.hub.subscribe_path(("default", "p1", "c1", "getppid", "extra"))


def test_write_event_publishes_on_path_streams(env: Env) -> None:
    c = box("a", 2001, name="c1", pod="p1")
    mine = env.hub.subscribe_path(("default", "p1", "c1"))
    other = env.hub.subscribe_path(("default", "p2"))
    tev = TraceEvent(events(2001, "openat", [1])[0], c)
    env.hub.write_event(tev)
    assert drain(mine) == [tev] and drain(mine) == []
    assert drain(other) == []


# --------------------------------------------------------------------------- overflow


def test_slow_subscriber_loses_only_its_own_events(env: Env) -> None:
    n = 100
    t = demo("a", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    full = env.hub.subscribe(t)
    newest = env.hub.subscribe(t, maxsize=10, overflow=Overflow.DROP_NEWEST)
    oldest = env.hub.subscribe(t, maxsize=10, overflow="drop_oldest")
    path_slow = env.hub.subscribe_path(("default",), maxsize=3)
    batch = events(1001, "getppid", range(1, n + 1))
    # The producer never blocks on a full queue.
    th = threading.Thread(target=env.hub.route, args=(batch,))
    t0 = time.monotonic()
    th.start()
    th.join(timeout=5)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 2
    assert [e.seq for e in drain(full)] == list(range(1, n + 1))
    assert [e.seq for e in drain(newest)] == list(range(1, 11))
    assert [e.seq for e in drain(oldest)] == list(range(n - 9, n + 1))
    assert [e.seq for e in drain(path_slow)] == [1, 2, 3]
    assert full.stats() == {"delivered": n, "dropped": 0, "queued": 0}
    assert newest.stats() == {"delivered": 10, "dropped": n - 10, "queued": 0}
    assert oldest.stats() == {"delivered": 10, "dropped": n - 10, "queued": 0}
    assert path_slow.dropped == n - 3
    subs = env.hub.stats()["jobs"][t.status.job_id]["subscribers"]
    assert [s["dropped"] for s in subs] == [0, n - 10, n - 10]
    # The job itself delivered everything: drops are the subscribers' own.
    env.filters.counts[(1001, NR["getppid"])] = n
    total = env.hub.stats()["jobs"][t.status.job_id]["total"]
    assert total == {"matched": n, "delivered": n, "dropped": 0, "sampled_out": 0}


def test_subscription_rejects_bad_maxsize_and_overflow(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    with pytest.raises(ValueError):
        env.hub.subscribe(t, maxsize=0)
    with pytest.raises(ValueError):
        env.hub.subscribe(t, overflow="block")
    with pytest.raises(HubError, match="no job"):
        env.hub.subscribe(demo("never-run", ["getppid"]))


# --------------------------------------------------------------------------- events


def test_events_are_immutable_and_shared(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    c = box("c1", 1001)
    env.obs.start_container(c)
    s1, s2 = env.hub.subscribe(t), env.hub.subscribe(t)
    p1 = env.hub.subscribe_path(("default", "p1"))
    env.hub.route(events(1001, "getppid", [1, 2]))
    (a1, b1), (a2, b2), (pa, pb) = drain(s1), drain(s2), drain(p1)
    assert a1 is a2 is pa and b1 is b2 is pb and a1 is not b1
    assert isinstance(a1, TraceEvent)
    assert a1.container == c and a1.seq == 1 and a1.syscall == "getppid"
    with pytest.raises(AttributeError):
        a1.seq = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a1.container = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a1.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del a1.container
    with pytest.raises(AttributeError):
        a1.container.name = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a1.container.labels["app"] = "changed"  # type: ignore[index]
    assert a1.container is c and a1.seq == 1
    d = a1.to_dict()
    assert d["seq"] == 1 and d["container"]["name"] == "c1" and d["container"]["pod"] == "p1"
    assert "getppid() #1" in repr(a1)


# --------------------------------------------------------------------------- callbacks


def test_unsubscribe_from_inside_callback(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    calls: list[tuple[str, int]] = []
    threads: set[int] = set()
    done = threading.Event()
    unsub: Callable[[], None] | None = None

    def cb(job_id: str, ev: TraceEvent) -> None:
        calls.append((job_id, ev.seq))
        threads.add(threading.get_ident())
        if len(calls) == 3:
            assert unsub is not None
            unsub()  # takes the hub lock: must not deadlock
            done.set()

    unsub = env.hub.attach_trace(t, cb)
    other = env.hub.subscribe(t)
    env.hub.route(events(1001, "getppid", range(1, 11)))
    assert done.wait(5), "callback unsubscribe deadlocked or never ran"
    time.sleep(0.2)
    env.hub.route(events(1001, "getppid", range(11, 21)))
    time.sleep(0.2)
    job_id = t.status.job_id
    assert calls == [(job_id, 1), (job_id, 2), (job_id, 3)]
    assert threading.get_ident() not in threads and len(threads) == 1
    # Only the unsubscribed one is gone; the other subscriber has everything.
    assert len(env.hub.stats()["jobs"][job_id]["subscribers"]) == 1
    assert [e.seq for e in drain(other)] == list(range(1, 21))
    unsub()  # idempotent


def test_callback_errors_do_not_stop_delivery(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    seen: list[int] = []

    def cb(_job: str, ev: TraceEvent) -> None:
        seen.append(ev.seq)
        if ev.seq % 2:
            raise RuntimeError("subscriber bug")

    unsub = env.hub.attach_trace(t, cb)
    env.hub.route(events(1001, "getppid", range(1, 7)))
    assert wait_until(lambda: len(seen) == 6)
    assert seen == [1, 2, 3, 4, 5, 6]
    unsub()


# --------------------------------------------------------------------------- async


def test_async_iteration(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    sub = env.hub.subscribe(t)

    async def main() -> list[int]:
        got: list[int] = []

        async def feed() -> None:
            await asyncio.sleep(0.05)  # the consumer is already waiting
            threading.Thread(
                target=env.hub.route, args=(events(1001, "getppid", range(1, 9)),)
            ).start()

        task = asyncio.create_task(feed())
        async for ev in sub:
            assert isinstance(ev, TraceEvent)
            got.append(ev.seq)
            if len(got) == 5:
                break
        await task
        return got

    assert asyncio.run(asyncio.wait_for(main(), 5)) == [1, 2, 3, 4, 5]

    async def rest() -> list[int]:
        sub.close()  # the queued events are still read, then the iteration ends
        return [ev.seq async for ev in sub]

    assert asyncio.run(asyncio.wait_for(rest(), 5)) == [6, 7, 8]


def test_async_wait_cancelled_loses_no_event(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    sub = env.hub.subscribe(t)

    async def main() -> list[int]:
        it = aiter(sub)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(it), 0.03)  # cancelled while waiting
        # An event arrives while the cancelled wait may still be pending.
        env.hub.route(events(1001, "getppid", [1]))
        it2 = aiter(sub)
        first = await asyncio.wait_for(anext(it2), 2)
        return [first.seq]

    assert asyncio.run(main()) == [1]
    assert sub.stats()["delivered"] == 1


def test_subscription_ends_when_its_trace_is_deleted(env: Env) -> None:
    t = demo("ends", ["getppid"])
    env.run(t)
    sub = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(events(1001, "getppid", [1, 2, 3]))
    got: list[int] = []

    def consume() -> None:
        got.extend(ev.seq for ev in sub)  # ends once the trace is deleted

    th = threading.Thread(target=consume)
    th.start()
    assert wait_until(lambda: len(got) == 3)
    env.hub.delete_trace(t)
    th.join(timeout=5)
    assert not th.is_alive()
    assert got == [1, 2, 3]
    assert sub.closed


def test_completed_trace_can_run_again(env: Env) -> None:
    t = demo("again", ["getppid"])
    env.run(t)
    env.obs.start_container(box("c1", 1001))
    env.check({(1001, NR["getppid"]): 1})
    env.hub.delete_trace(t)
    env.check({})
    # Its job id is free again: the new job replaces the completed one.
    job = env.run(t)
    assert job.job_id == t.status.job_id
    assert env.hub.job(job.job_id) is job and not job.stopped
    env.check({(1001, NR["getppid"]): 1})
    with pytest.raises(HubError, match="already running"):
        env.hub.run_job(job)
