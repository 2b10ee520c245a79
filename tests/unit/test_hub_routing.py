"""The Hub's routing without privileges: exact per-job sampling and
accounting (matched = delivered + dropped + sampled_out, per key and per
job), late jobs, in-flight records after releases and deletes, path streams
and immutable shared events. Records come from the in-memory kernel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.hub_env import (
    NR,
    Env,
    balanced,
    box,
    demo,
    drain,
    events,
    running_env,
    totals,
    wait_until,
)
from support.kernel_model import FakeEvent
from syshub import TraceEvent, syscalls


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


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
    env.hub.route(env.kernel.calls(key, n))
    for r, sub in subs.items():
        got = [ev.seq for ev in drain(sub)]
        assert got == list(range(r, n + 1, r))
    stats = env.hub.stats()
    assert stats.probe is None and stats.decode_errors == 0
    assert stats.routed == n and stats.unrouted == 0
    for r, t in traces.items():
        js = stats.jobs[t.status.job_id]
        assert totals(js) == (n, n // r, 0, n - n // r)
        (k,) = js.keys
        assert (k.pid_ns, k.nr) == key
        assert (k.matched, k.delivered, k.dropped, k.sampled_out) == totals(js)
        assert balanced(js)


def test_kernel_sampling_at_the_gcd_is_exact_per_job(env: Env) -> None:
    """Rates 4 and 6 share a key sampled at 2 in the kernel: each job gets
    exactly the multiples of its own rate."""
    n = 48
    t4, t6 = demo("r4", ["getppid"], sample_rate=4), demo("r6", ["getppid"], sample_rate=6)
    env.run(t4)
    env.run(t6)
    s4, s6 = env.hub.subscribe(t4), env.hub.subscribe(t6)
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["getppid"])
    env.check({key: 2})
    records = env.kernel.calls(key, n)
    assert [e.seq for e in records] == list(range(2, n + 1, 2))
    env.hub.route(records)
    assert [e.seq for e in drain(s4)] == list(range(4, n + 1, 4))
    assert [e.seq for e in drain(s6)] == list(range(6, n + 1, 6))
    stats = env.hub.stats().jobs
    assert totals(stats[t4.status.job_id]) == (n, n // 4, 0, n - n // 4)
    assert totals(stats[t6.status.job_id]) == (n, n // 6, 0, n - n // 6)


def test_ring_drops_are_counted_per_job(env: Env) -> None:
    n = 24
    lost = {4, 8, 9}  # records the "kernel" could not deliver (ring full)
    traces = {r: demo(f"r{r}", ["getppid"], sample_rate=r) for r in (1, 2, 3, 4)}
    subs = {}
    for r, t in traces.items():
        env.run(t)
        subs[r] = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    records = env.kernel.calls((1001, NR["getppid"]), n)
    env.hub.route([e for e in records if e.seq not in lost])
    stats = env.hub.stats().jobs
    for r, t in traces.items():
        want = [s for s in range(r, n + 1, r) if s not in lost]
        assert [ev.seq for ev in drain(subs[r])] == want
        js = stats[t.status.job_id]
        assert js.matched == n
        assert js.delivered == len(want)
        assert js.dropped == len([s for s in lost if s % r == 0])
        assert balanced(js)


def test_late_job_sees_only_later_calls(env: Env) -> None:
    key = (1001, NR["getppid"])
    early = demo("early", ["getppid"])
    env.run(early)
    env.obs.start_container(box("c1", 1001))
    before = env.kernel.calls(key, 10)  # the kernel has already counted 10 calls
    late = demo("late", ["getppid"], sample_rate=2)
    env.run(late)
    s_early, s_late = env.hub.subscribe(early), env.hub.subscribe(late)
    # In-flight records from before the late job started are not its calls.
    env.hub.route(before[4:] + env.kernel.calls(key, 10))
    assert [e.seq for e in drain(s_early)] == list(range(5, 21))
    assert [e.seq for e in drain(s_late)] == [12, 14, 16, 18, 20]
    stats = env.hub.stats().jobs
    assert totals(stats[late.status.job_id]) == (10, 5, 0, 5)
    # The early job never received 1..4: counted dropped (still in flight or lost).
    assert totals(stats[early.status.job_id]) == (20, 16, 4, 0)


def test_in_flight_events_after_delete_reach_only_live_jobs(env: Env) -> None:
    a = demo("a", ["getppid"])
    b = demo("b", ["getppid", "openat"])
    env.run(a)
    env.run(b)
    sa, sb = env.hub.subscribe(a), env.hub.subscribe(b)
    root = env.hub.subscribe_path(())
    env.obs.start_container(box("c1", 1001))
    env.hub.delete_trace(a)
    # Records of b's keys are routed to b; a is gone and gets nothing.
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
    st = env.hub.stats()
    assert (st.routed, st.unrouted) == (0, 6)


# --------------------------------------------------------------------------- released keys


def test_released_context_gets_what_was_emitted_before_release(env: Env) -> None:
    """A container stop releases the job's context at the key's current
    sequence: records emitted before (routed later) are still the job's and
    counted exactly; nothing after the end is."""
    t1, t2 = demo("one", ["getppid"]), demo("two", ["getppid"], sample_rate=2)
    env.run(t1)
    env.run(t2)
    s1, s2 = env.hub.subscribe(t1), env.hub.subscribe(t2)
    c = box("c1", 1001)
    env.obs.start_container(c)
    key = (1001, NR["getppid"])
    in_flight = env.kernel.calls(key, 6)
    env.obs.stop_container(c)
    env.check({})
    assert env.hub._draining[key]  # both contexts still drain the key
    env.hub.route(in_flight[:4])
    env.hub.route(in_flight[4:])
    assert [e.seq for e in drain(s1)] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in drain(s2)] == [2, 4, 6]
    stats = env.hub.stats().jobs
    assert totals(stats[t1.status.job_id]) == (6, 6, 0, 0)
    assert totals(stats[t2.status.job_id]) == (6, 3, 0, 3)


def test_delete_trace_ends_contexts_released_earlier(env: Env) -> None:
    """Once a trace is deleted its counts are final and nothing of it stays
    in the routing tables, also for keys its containers released before."""
    t = demo("one", ["getppid"])
    env.run(t)
    c = box("c1", 1001)
    env.obs.start_container(c)
    key = (1001, NR["getppid"])
    in_flight = env.kernel.calls(key, 6)
    env.hub.route(in_flight[:2])
    env.obs.stop_container(c)  # releases the context: it drains the key
    env.hub.delete_trace(t)
    final = env.hub.stats().jobs[t.status.job_id]
    assert totals(final) == (6, 2, 4, 0)
    env.hub.route(in_flight[2:])  # arrives after the delete returned
    assert env.hub.stats().jobs[t.status.job_id] == final
    assert key not in env.hub._router.routes and key not in env.hub._draining


def test_readded_key_does_not_feed_the_old_draining_context(env: Env) -> None:
    """Two containers of one pid namespace, each selected by its own job.
    When job ``old``'s container stops, the key goes (its sequence with it);
    ``new``'s container brings it back and the kernel numbers calls from 1
    again: those are not ``old``'s."""
    old = demo("old", ["getppid"], hosts=["one"])
    new = demo("new", ["getppid"], hosts=["two"])
    env.run(old)
    env.run(new)
    s_old, s_new = env.hub.subscribe(old), env.hub.subscribe(new)
    key = (1001, NR["getppid"])
    one, two = box("one", 1001), box("two", 1001)
    env.obs.start_container(one)
    emitted = env.kernel.calls(key, 5)
    env.hub.route(emitted[:3])  # 4 and 5 are still in flight at the stop
    env.obs.stop_container(one)
    env.check({})
    env.obs.start_container(two)
    env.check({key: 1})
    assert env.kernel.sequences()[key] == 0  # re-added: the sequence restarted
    env.hub.route(env.kernel.calls(key, 3))
    assert [e.seq for e in drain(s_old)] == [1, 2, 3]
    assert [e.seq for e in drain(s_new)] == [1, 2, 3]
    stats = env.hub.stats().jobs
    assert totals(stats[old.status.job_id]) == (5, 3, 2, 0)
    assert totals(stats[new.status.job_id]) == (3, 3, 0, 0)
    assert balanced(stats[old.status.job_id]) and balanced(stats[new.status.job_id])


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


def test_write_event_publishes_on_path_streams(env: Env) -> None:
    c = box("a", 2001, name="c1", pod="p1")
    mine = env.hub.subscribe_path(("default", "p1", "c1"))
    other = env.hub.subscribe_path(("default", "p2"))
    tev = TraceEvent(events(2001, "openat", [1])[0], c)
    env.hub.write_event(tev)
    assert drain(mine) == [tev] and drain(mine) == []
    assert drain(other) == []


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
        a1.seq = 5
    with pytest.raises(AttributeError):
        a1.container = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a1.extra = 1
    with pytest.raises(AttributeError):
        del a1.container
    box_ = a1.container
    assert box_ is not None
    with pytest.raises(AttributeError):
        box_.name = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        box_.labels["app"] = "changed"  # type: ignore[index]
    assert a1.container is c and a1.seq == 1
    d = a1.to_dict()
    assert d["seq"] == 1 and d["container"]["name"] == "c1" and d["container"]["pod"] == "p1"
    assert "getppid() #1" in repr(a1)


def test_event_document_has_container_null_when_unknown() -> None:
    ev = events(4242, "getppid", [3])[0]
    d = TraceEvent(ev, None).to_dict()
    assert "container" in d and d["container"] is None
    assert d["seq"] == 3 and d["syscall"] == "getppid"
    assert TraceEvent(ev, None).path == ("", "", "", "getppid")


def test_lowering_a_key_rate_counts_no_false_drops(env: Env) -> None:
    """Job ``b`` (rate 2) joins a live key sampled at 4 while calls keep
    coming: nothing is lost in the ring, so ``b`` must count no drop."""
    key = (1001, NR["getppid"])
    env.obs.start_container(box("c1", 1001))
    env.run(demo("a", ["getppid"], sample_rate=4))
    env.hub.route(env.kernel.calls(key, 8))
    racing: list[FakeEvent] = []

    def calls_meanwhile(op: object) -> None:
        if getattr(op, "key", None) == key:
            racing.extend(env.kernel.calls(key, 4))  # still sampled at 4

    env.kernel.before_apply = calls_meanwhile
    b = demo("b", ["getppid"], sample_rate=2)
    env.run(b)
    env.kernel.before_apply = None
    env.check({key: 2})
    sub = env.hub.subscribe(b)
    env.hub.route(racing + env.kernel.calls(key, 8))
    got = [e.seq for e in drain(sub)]
    js = env.hub.stats().jobs[b.status.job_id]
    assert balanced(js) and js.delivered == len(got)
    assert js.dropped == 0
