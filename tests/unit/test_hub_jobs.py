"""Jobs and their targets on the in-memory kernel (no privileges): every
namespace, one pid namespace, the namespace of a pid (held open), one
process scope; per-trace capture sizes; ``wait_applied``; and ``delete_trace``
routing what the kernel had emitted before it returns."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.hub_env import NR, Env, balanced, box, demo, drain, running_env, totals, wait_until
from support.kernel_model import FakeEvent
from syshub import HubError, Target, Trace, TraceState
from syshub.hub import TargetKind
from syshub.hub.plan import DEFAULT_ARGV_MAX, DEFAULT_BUF_MAX, DEFAULT_STR_MAX, KeyConfig
from syshub.nsproc import pid_namespace_inode
from syshub.topology import Container, EmitFn, LocalObserver, SyncedFn


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


def missing_pid() -> int:
    """A pid no process has (the highest possible one, checked)."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def ns_holds(inode: int) -> int:
    """How many of our descriptors hold pid namespace ``inode`` open."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"pid:[{inode}]":
                n += 1
        except OSError:
            continue
    return n


# --------------------------------------------------------------------------- targets


def test_target_values() -> None:
    assert Target() == Target.containers() and Target().follows_observer
    assert str(Target.containers()) == "containers"
    assert str(Target.every_namespace()) == "every-namespace"
    assert Target.every_namespace().kind is TargetKind.EVERY_NAMESPACE
    assert str(Target.pid_namespace(4026531836)) == "pid-namespace:4026531836"
    assert str(Target.namespace_of(12)) == "namespace-of:12"
    assert str(Target.process(12)) == "process:12"
    for t in (Target.every_namespace(), Target.pid_namespace(1), Target.process(1)):
        assert not t.follows_observer


def test_every_namespace_is_key_zero(env: Env) -> None:
    t = Trace.new("all", ["getppid", "openat"], sample_rate=2)
    job = env.hub.run_trace(t, target=Target.every_namespace())
    assert env.hub.wait_applied(t, timeout=0)  # fixed keys: applied before run returns
    g, o = (0, NR["getppid"]), (0, NR["openat"])
    env.check({g: 2, o: 2})
    sub = env.hub.subscribe(t)
    # Calls of any namespace match key 0; a known one is labelled with its container.
    c = box("c1", 3001)
    env.obs.start_container(c)
    assert wait_until(lambda: env.hub.topology.lookup_container(3001) is not None)
    fed = env.kernel.calls(g, 4, pid_ns=3001) + env.kernel.calls(g, 4, pid_ns=3002)
    assert [(e.seq, e.pid_ns) for e in fed] == [(2, 3001), (4, 3001), (6, 3002), (8, 3002)]
    env.hub.route(fed)
    got = drain(sub)
    assert [(e.seq, e.pid_ns) for e in got] == [(2, 3001), (4, 3001), (6, 3002), (8, 3002)]
    assert [e.container for e in got] == [c, c, None, None]
    assert got[2].to_dict()["container"] is None
    js = env.hub.stats().jobs[job.job_id]
    assert {(k.pid_ns, k.nr) for k in js.keys} == {g, o}
    assert totals(js) == (8, 4, 0, 4) and balanced(js)
    env.hub.delete_trace(t)
    env.check({})


def test_pid_namespace_target_is_that_key(env: Env) -> None:
    t = Trace.new("ns", ["read"])
    job = env.hub.run_trace(t, target=Target.pid_namespace(4026532999))
    assert job.target == Target.pid_namespace(4026532999)
    assert env.hub.wait_applied(job, timeout=0)
    env.check({(4026532999, NR["read"]): 1})
    env.hub.delete_trace(job)
    env.check({})


def test_namespace_of_a_pid_holds_the_namespace(env: Env) -> None:
    me = os.getpid()
    inode = pid_namespace_inode(me)
    held = ns_holds(inode)
    t = Trace.new("mine", ["getppid"])
    env.hub.run_trace(t, target=Target.namespace_of(me))
    assert env.hub.wait_applied(t, timeout=0)
    env.check({(inode, NR["getppid"]): 1})
    assert ns_holds(inode) == held + 1  # the inode cannot be reused while traced
    env.hub.delete_trace(t)
    env.check({})
    assert ns_holds(inode) == held


def test_namespace_of_a_missing_pid_is_a_one_line_error(env: Env) -> None:
    pid = missing_pid()
    ops = env.kernel.ops
    with pytest.raises(HubError) as err:
        env.hub.run_trace(Trace.new("gone", ["getppid"]), target=Target.namespace_of(pid))
    msg = str(err.value)
    assert str(pid) in msg and "\n" not in msg
    assert env.kernel.ops == ops  # nothing was installed
    env.check({})


def test_process_target_is_a_scope(env: Env) -> None:
    me = os.getpid()
    t = Trace.new("proc", ["getppid", "openat"], sample_rate=3)
    job = env.hub.run_trace(t, target=Target.process(me))
    assert env.hub.wait_applied(t, timeout=0)
    ((scope, pid),) = env.kernel.scopes.items()
    assert pid == me and 1 <= scope <= 65535
    env.check({(scope, NR["getppid"]): 3, (scope, NR["openat"]): 3})
    sub = env.hub.subscribe(t)
    # A scope spans namespaces: events carry the caller's pid_ns, the key is the scope.
    fed = env.kernel.calls((scope, NR["getppid"]), 9, pid_ns=4026531836)
    env.hub.route(fed)
    assert [e.seq for e in drain(sub)] == [3, 6, 9]
    assert totals(env.hub.stats().jobs[job.job_id]) == (9, 3, 0, 6)
    env.hub.delete_trace(t)
    env.check({})
    assert env.kernel.scopes == {}
    assert env.kernel.scope_log == [("add", scope), ("remove", scope)]


def test_two_process_targets_get_their_own_scopes(env: Env) -> None:
    me, parent = os.getpid(), os.getppid()
    a, b = Trace.new("a", ["getppid"]), Trace.new("b", ["getppid"])
    env.hub.run_trace(a, target=Target.process(me))
    env.hub.run_trace(b, target=Target.process(parent))
    assert sorted(env.kernel.scopes.values()) == sorted([me, parent])
    sa, sb = sorted(env.kernel.scopes)
    env.check({(sa, NR["getppid"]): 1, (sb, NR["getppid"]): 1})
    env.hub.delete_trace(a)
    assert list(env.kernel.scopes.values()) == [parent]
    env.hub.delete_trace(b)
    assert env.kernel.scopes == {}
    env.check({})


def test_process_target_of_a_missing_pid_is_a_one_line_error(env: Env) -> None:
    pid = missing_pid()
    with pytest.raises(HubError) as err:
        env.hub.run_trace(Trace.new("gone", ["getppid"]), target=Target.process(pid))
    msg = str(err.value)
    assert str(pid) in msg and "\n" not in msg
    assert env.kernel.scopes == {} and env.kernel.ops == 0
    env.check({})


def test_failed_start_leaves_no_running_job(env: Env) -> None:
    t = Trace.new("retry", ["getppid"])
    pid = missing_pid()
    with pytest.raises(HubError) as err:
        env.hub.run_trace(t, target=Target.process(pid))
    assert t.status.state is TraceState.FAILED and t.status.completion_time is not None
    (failed,) = env.hub.jobs()
    assert failed.error == str(err.value) and str(pid) in failed.error
    assert failed.stopped and failed.wait(0)
    assert all(j.stopped for j in env.hub.jobs())
    assert all(js.state != "Running" for js in env.hub.stats().jobs.values())
    # The same trace can then run with a target that exists.
    job = env.hub.run_trace(t, target=Target.process(os.getpid()))
    assert env.hub.wait_applied(job, timeout=0)


# --------------------------------------------------------------------------- capture sizes


@dataclass(frozen=True, slots=True)
class Sizes:
    str_max: int
    argv_max: int
    buf_max: int
    durations: bool = False


def capture_values() -> list[Any]:
    """Our own capture object, and ``spec.limits.Capture`` once it exists."""
    out: list[Any] = [Sizes]
    try:
        from syshub.spec.limits import Capture
    except ImportError:
        return out
    return [*out, Capture]


@pytest.mark.parametrize("make", capture_values(), ids=lambda m: m.__name__)
def test_capture_sizes_are_the_max_per_key(env: Env, make: Any) -> None:
    ns = 4026533000
    key = (ns, NR["openat"])
    small = make(str_max=512, argv_max=8, buf_max=16)
    big = make(str_max=1024, argv_max=4, buf_max=128)
    a = Trace.new("small", ["openat"])
    b = Trace.new("big", ["openat"], sample_rate=2)
    env.hub.run_trace(a, target=Target.pid_namespace(ns), capture=small)
    assert env.kernel.configs() == {key: KeyConfig(1, 512, 8, 16)}
    env.hub.run_trace(b, target=Target.pid_namespace(ns), capture=big)
    assert env.kernel.configs() == {key: KeyConfig(1, 1024, 8, 128)}
    env.check()
    seq = env.kernel.sequences()[key]
    env.kernel.calls(key, 5)
    env.hub.delete_trace(b)  # the bigger job leaves: the filter shrinks back
    assert env.kernel.configs() == {key: KeyConfig(1, 512, 8, 16)}
    assert env.kernel.sequences()[key] == seq + 5  # updated in place, not re-added
    env.check()
    # A job without capture sizes wants the defaults.
    c = Trace.new("default", ["openat"])
    env.hub.run_trace(c, target=Target.pid_namespace(ns))
    assert env.kernel.configs() == {
        key: KeyConfig(1, 512, DEFAULT_ARGV_MAX, DEFAULT_BUF_MAX),
    }
    env.hub.delete_trace(a)
    assert env.kernel.configs() == {
        key: KeyConfig(1, DEFAULT_STR_MAX, DEFAULT_ARGV_MAX, DEFAULT_BUF_MAX)
    }
    env.hub.delete_trace(c)
    assert env.kernel.configs() == {}


def test_capture_sizes_of_observer_driven_jobs(env: Env) -> None:
    a = demo("a", ["openat"])
    b = demo("b", ["openat"])
    env.run(a, capture=Sizes(4096, 2, 2))
    env.run(b, capture=Sizes(1, 64, 1))
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["openat"])
    assert env.kernel.configs() == {key: KeyConfig(1, 4096, 64, 2)}
    env.hub.delete_trace(a)
    assert env.kernel.configs() == {key: KeyConfig(1, 1, 64, 1)}
    env.check()


# --------------------------------------------------------------------------- wait_applied


class GatedObserver:
    """A :class:`LocalObserver` whose ``run`` starts only when ``gate`` opens
    (an observer still listing its containers)."""

    def __init__(self, inner: LocalObserver, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate

    def connect(self) -> None:
        self.inner.connect()

    def containers(self) -> list[Container]:
        return self.inner.containers()

    def run(self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None) -> None:
        while not self.gate.wait(0.01):
            if stop.is_set():
                return
        self.inner.run(emit, stop, on_synced)

    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> GatedObserver:
        return GatedObserver(self.inner.copy(namespace, label_selector, field_selector), self.gate)

    def close(self) -> None:
        self.inner.close()

    def start_container(self, c: Container) -> None:
        self.inner.start_container(c)


def test_wait_applied_for_an_observer_job(env: Env) -> None:
    env.obs.start_container(box("c1", 1001))
    env.obs.start_container(box("c2", 1002))
    t = demo("w", ["getppid"])
    env.hub.run_trace(t)
    assert env.hub.wait_applied(t, timeout=5)
    # Applied means the initial containers' filters are in the kernel now.
    env.check({(1001, NR["getppid"]): 1, (1002, NR["getppid"]): 1})


def test_wait_applied_waits_for_the_initial_containers() -> None:
    from support.hub_env import Env as HubEnv
    from support.kernel_model import KernelModel
    from syshub import Hub, HubConfig

    gate = threading.Event()
    local = LocalObserver()
    local.start_container(box("c1", 1001))
    kernel = KernelModel()
    hub = Hub(HubConfig(), GatedObserver(local, gate), filters=kernel)
    hub.start()
    env = HubEnv(hub, local, kernel)
    try:
        t = demo("gated", ["getppid"])
        job = hub.run_trace(t)
        assert not hub.wait_applied(t, timeout=0.2)
        assert not job.wait_applied(0) and kernel.current() == {}
        gate.set()
        assert hub.wait_applied(job, timeout=5)
        env.check({(1001, NR["getppid"]): 1})
    finally:
        gate.set()
        hub.stop()
    assert kernel.current() == {}


def test_wait_applied_of_an_unknown_job_raises(env: Env) -> None:
    with pytest.raises(HubError, match="job not found"):
        env.hub.wait_applied("nope-00000000", timeout=0)


# --------------------------------------------------------------------------- delete flushes


@pytest.fixture
def penv() -> Iterator[Env]:
    with running_env(with_probe=True, flush_timeout=5.0) as e:
        yield e


def test_delete_trace_routes_what_the_kernel_emitted(penv: Env) -> None:
    """Records in the ring when delete_trace is called are routed to the job
    before its subscriptions close: delete_trace waits for them."""
    assert penv.probe is not None
    key = (4026533100, NR["getppid"])
    t = Trace.new("flush", ["getppid"], sample_rate=2)
    job = penv.hub.run_trace(t, target=Target.pid_namespace(key[0]))
    sub = penv.hub.subscribe(t)
    penv.probe.play(key, 4)
    assert wait_until(lambda: sub.qsize() == 2)  # the reader loop is running
    penv.probe.hold()  # the reader lags: the next records wait in the ring
    penv.probe.play(key, 16, lose={10})
    done = threading.Event()

    def delete() -> None:
        penv.hub.delete_trace(t)
        done.set()

    th = threading.Thread(target=delete)
    th.start()
    time.sleep(0.2)
    assert not done.is_set() and not sub.closed  # waiting for the ring
    assert penv.kernel.current() == {}  # ... with the filter already gone
    penv.probe.release()
    th.join(timeout=5)
    assert done.is_set() and sub.closed
    assert [e.seq for e in drain(sub)] == [2, 4, 6, 8, 12, 14, 16, 18, 20]
    st = penv.hub.stats()
    js = st.jobs[job.job_id]
    assert js.state == "Complete"
    assert totals(js) == (20, 9, 1, 10) and balanced(js)
    assert js.subscribers[0].delivered == 9 and js.subscribers[0].dropped == 0
    assert st.probe is not None
    k = st.probe.key(*key)
    assert k is not None and (k.matched, k.dropped, k.pending) == (20, 1, 0)
    assert st.routed == 9 and st.unrouted == 0


def test_delete_trace_gives_up_after_flush_timeout() -> None:
    with running_env(with_probe=True, flush_timeout=0.2) as env:
        assert env.probe is not None
        key = (4026533101, NR["getppid"])
        t = Trace.new("stuck", ["getppid"])
        job = env.hub.run_trace(t, target=Target.pid_namespace(key[0]))
        sub = env.hub.subscribe(t)
        env.probe.hold()
        env.probe.play(key, 5)
        t0 = time.monotonic()
        env.hub.delete_trace(t)
        assert 0.15 <= time.monotonic() - t0 < 2
        assert sub.closed and drain(sub) == []
        final = env.hub.stats().jobs[job.job_id]
        assert totals(final) == (5, 0, 5, 0)  # never routed: counted dropped
        env.probe.release()
        assert wait_until(lambda: env.probe is not None and env.probe.queued() == 0)
        assert wait_until(lambda: env.hub.unrouted == 5)
        # Late records are nobody's: the deleted job's counts are final.
        assert env.hub.stats().jobs[job.job_id] == final


def test_fake_event_keys() -> None:
    ev = FakeEvent(3001, NR["getppid"], 1, "getppid", 0)
    assert ev.key_ns == 0 and ev.pid_ns == 3001


# --------------------------------------------------------------------------- kernel failures


def test_kernel_refusing_a_filter_keeps_kernel_equal_to_desired() -> None:
    with running_env() as env:
        env.kernel.capacity = 2
        t = Trace.new("too-many", ["getppid", "openat", "close"])
        with pytest.raises(HubError) as err:
            env.hub.run_trace(t, target=Target.every_namespace())
        assert "\n" not in str(err.value) and "no space left" in str(err.value)
        # The hub's view and the kernel agree, and the failed job holds nothing
        # (the filters installed before the refusal are rolled back).
        assert env.kernel.current() == env.hub.desired_filters() == {}
        assert env.kernel.ops == 4  # 2 set, 2 removed
        assert t.status.state is TraceState.FAILED
        assert all(js.state != "Running" for js in env.hub.stats().jobs.values())


def test_kernel_refusing_a_container_filter_does_not_break_the_observer() -> None:
    with running_env() as env:
        env.kernel.capacity = 1
        t = demo("full", ["getppid", "openat"])
        job = env.run(t)
        env.obs.start_container(box("c1", 1001))  # must not raise into the observer
        env.check({})  # untraced rather than half traced
        assert job.errors == 1 and job.error is not None and "c1" in job.error
        assert t.status.state is TraceState.RUNNING
        # A container that fits is traced as usual.
        env.kernel.capacity = 2
        env.obs.start_container(box("c2", 1002))
        env.check({(1002, NR["getppid"]): 1, (1002, NR["openat"]): 1})
        assert job.errors == 1


def test_subscribe_to_an_unknown_job_raises(env: Env) -> None:
    with pytest.raises(HubError, match="job not found"):
        env.hub.subscribe("nope-00000000")


# --------------------------------------------------------------------------- overlapping keys


def test_kernel_model_matches_one_key_like_the_kernel() -> None:
    from support.kernel_model import KernelModel
    from syshub.hub.plan import SetFilter

    k = KernelModel()
    nr = NR["getppid"]
    for ns in (0, 1001, 7):
        k.apply(SetFilter((ns, nr), KeyConfig(1)))
    assert k.match(1001, nr, scope=7) == (7, nr)
    assert k.match(1001, nr) == (1001, nr)
    assert k.match(1002, nr) == (0, nr)
    assert k.match(1002, NR["read"]) is None


@pytest.mark.xfail(
    strict=True,
    reason="hub bug: the kernel matches one key per call (scope, else namespace, else 0) "
    "and the router only feeds that key's contexts: an every-namespace job misses the "
    "calls of namespaces another job traces (and a namespace job those of a scope)",
)
@pytest.mark.parametrize("shadow", ["namespace", "scope"])
def test_overlapping_targets_both_see_a_call(env: Env, shadow: str) -> None:
    wide = Trace.new("wide", ["getppid"])
    narrow = Trace.new("narrow", ["getppid"])
    if shadow == "namespace":
        env.hub.run_trace(wide, target=Target.every_namespace())
        env.hub.run_trace(narrow, target=Target.pid_namespace(1001))
        scope = 0
    else:
        env.hub.run_trace(wide, target=Target.pid_namespace(1001))
        env.hub.run_trace(narrow, target=Target.process(os.getpid()))
        (scope,) = env.kernel.scopes
    s_wide, s_narrow = env.hub.subscribe(wide), env.hub.subscribe(narrow)
    env.hub.route(env.kernel.calls_in(1001, "getppid", 3, scope=scope))
    assert [e.seq for e in drain(s_narrow)] == [1, 2, 3]
    assert len(drain(s_wide)) == 3  # the wider target covers the call too
