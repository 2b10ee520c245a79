"""The Hub keeps the kernel filters exact (no privileges): refcounted keys,
gcd sample rates, containers sharing a pid namespace, job lifecycle, and a
property test against an independent model. The kernel is the in-memory
:class:`~support.kernel_model.KernelModel`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support.hub_env import NR, Env, box, demo, make_env, running_env
from support.kernel_model import KernelModel
from syshub import Hub, HubError, Job, Trace, TraceState
from syshub.hub.plan import RemoveFilter
from syshub.topology import Container, LocalObserver


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


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
    assert env.hub._nsmap == {} and env.hub._router.routes == {}


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
    ops = env.kernel.ops
    ctxs = dict(env.hub._contexts[job.job_id])
    env.obs.start_container(c)
    env.obs.start_container(c)
    env.check(expected)
    assert env.kernel.ops == ops
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
    ops = env.kernel.ops
    env.obs.stop_container(c1)
    env.check({key: 1})
    assert env.kernel.ops == ops  # the filter was never touched
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
    ops = env.kernel.ops
    env.obs.start_container(box("c2", 1002))
    env.obs.start_container(box("c1", 1001))
    env.check({})
    assert env.kernel.ops == ops
    assert env.hub._contexts[job.job_id] == {}
    with pytest.raises(HubError, match="stopped"):
        env.hub.push_job(job, 1003, NR["getppid"])
    env.check({})


def test_delete_unknown_trace_raises(env: Env) -> None:
    never_run = demo("nope", ["getppid"])
    with pytest.raises(HubError, match="no job yet"):
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
    assert env.hub.stats().jobs[job.job_id].state == "Running"
    env.hub.delete_trace(t)
    done = t.status
    assert done.state is TraceState.COMPLETE
    assert done.completion_time is not None and done.completion_time >= st_.start_time
    assert job.stopped and job.wait(2)
    # Deleting again is a no-op, not an error, and keeps the first completion time.
    env.hub.delete_trace(t)
    assert t.status.completion_time == done.completion_time
    assert env.hub.stats().jobs[job.job_id].state == "Complete"


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


def test_rate_change_keeps_the_key_sequence(env: Env) -> None:
    """Changing a key's rate updates the filter in place: its sequence goes
    on, so jobs already counting on it keep exact accounting."""
    key = (1001, NR["getppid"])
    env.obs.start_container(box("c1", 1001))
    env.run(demo("r4", ["getppid"], sample_rate=4))
    env.kernel.calls(key, 10)
    env.run(demo("r6", ["getppid"], sample_rate=6))
    env.check({key: 2})
    assert env.kernel.sequences()[key] == 10
    assert not any(isinstance(op, RemoveFilter) for op in env.kernel.log)


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


def check_model(env: Env, model: Model) -> None:
    """The kernel holds what the model wants; deleted jobs hold nothing and
    are gone from the routing tables."""
    hub = env.hub
    env.check(model.desired())
    for key, entry in hub._router.routes.items():
        live = tuple(hub._nsmap.get(key, ()))
        assert entry[: len(live)] == live  # the route starts with the live contexts
    for mj in model.jobs:
        if mj.live:
            assert mj.job._ns_members == model.members(mj)
        else:
            assert hub._contexts[mj.job.job_id] == {}
            for bucket in hub._nsmap.values():
                assert all(ctx.job is not mj.job for ctx in bucket)
            for ctxs in hub._router.routes.values():
                assert all(ctx.job is not mj.job for ctx in ctxs)


def run_model(boxes: list[PoolBox], ops: list[tuple[Any, ...]]) -> None:
    pool = [
        box(f"c{i}", 5000 + b.ns_index, name=b.name, app=b.app, namespace=b.namespace)
        for i, b in enumerate(boxes)
    ]
    e = make_env()
    model = Model()
    try:
        for step in ops:
            apply_op(step, model, pool, e.run, e.hub, e.obs)
            check_model(e, model)
    finally:
        e.hub.stop()
    assert e.kernel.current() == {}
    assert e.hub.desired_filters() == {}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pool_box, min_size=1, max_size=6), st.lists(op, min_size=2, max_size=30))
@example(  # a job deleted after its container stopped must leave no route behind
    [PoolBox(0, "web", "a", "default")],
    [("start", 0), ("create", frozenset({"getppid"}), 1, None, ()), ("stop", 0), ("delete", 0)],
)
def test_filters_equal_live_contexts_property(
    boxes: list[PoolBox], ops: list[tuple[Any, ...]]
) -> None:
    run_model(boxes, ops)


def test_kernel_model_is_strict() -> None:
    """The model catches a hub that removes what it never installed."""
    k = KernelModel()
    with pytest.raises(AssertionError, match="never set"):
        k.apply(RemoveFilter((1, 2)))
    with pytest.raises(AssertionError, match="never added"):
        k.remove_scope(7)
