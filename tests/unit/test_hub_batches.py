"""The Hub's batch mode without privileges: batch subscriptions get the same
events as event subscriptions (exact sampling, paths, containers), their
bound counts events, and a slow batch subscriber loses only its own events,
counted: per subscriber delivered + dropped + queued = what was routed to it,
per job matched = delivered + dropped + sampled_out."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support.hub_env import NR, Env, balanced, box, demo, drain, events, running_env, totals
from syshub.hub.batches import BatchSubscription, EventChunk


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


def chunks_of(sub: BatchSubscription, max_events: int = 1 << 20) -> list[EventChunk]:
    return sub.get_chunks(max_events, timeout=0)


def seqs(chunks: list[EventChunk]) -> list[int]:
    return [ev.seq for c in chunks for ev in c.events()]


def test_batch_and_event_subscribers_get_the_same_events(env: Env) -> None:
    n = 60
    traces = {r: demo(f"r{r}", ["getppid"], sample_rate=r) for r in (1, 2, 3)}
    subs, bsubs = {}, {}
    for r, t in traces.items():
        env.run(t)
        subs[r] = env.hub.subscribe(t)
        bsubs[r] = env.hub.subscribe_batches(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(env.kernel.calls((1001, NR["getppid"]), n))
    stats = env.hub.stats()
    for r, t in traces.items():
        got = chunks_of(bsubs[r])
        assert len(got) == 1  # one chunk per batch
        assert seqs(got) == [ev.seq for ev in drain(subs[r])] == list(range(r, n + 1, r))
        assert all(ev.container is not None and ev.container.id == "c1" for ev in got[0].events())
        js = stats.jobs[t.status.job_id]
        assert totals(js) == (n, n // r, 0, n - n // r) and balanced(js)


def test_chunk_ranges_and_containers_cover_runs(env: Env) -> None:
    t = demo("two", ["getppid", "openat"])
    env.run(t)
    sub = env.hub.subscribe_batches(t)
    env.obs.start_container(box("c1", 1001))
    env.obs.start_container(box("c2", 1002))
    fed = events(1001, "getppid", [1, 2]) + events(1002, "openat", [1]) + events(9, "read", [1])
    fed += events(1001, "openat", [1, 2])
    env.hub.route(fed)
    (chunk,) = chunks_of(sub)
    assert chunk.ranges == ((0, 3), (4, 6))
    assert {ns: c.id if c else None for ns, c in chunk.containers.items()} == {
        1001: "c1",
        1002: "c2",
    }
    assert len(chunk) == 5
    # Not a probe batch: the encoders fall back to each event's own documents.
    lines = chunk.to_json(node="n").decode().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 1, 1, 2]
    assert all(json.loads(x)["node"] == "n" for x in lines)
    assert chunk.to_text().decode().splitlines()[0] == "getppid() #1"
    assert env.hub.stats().unrouted == 1


def test_slow_batch_subscriber_loses_only_its_own_events_counted(env: Env) -> None:
    t = demo("slow", ["getppid"])
    env.run(t)
    slow = env.hub.subscribe_batches(t, maxsize=10)
    fast = env.hub.subscribe_batches(t)
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["getppid"])
    for _ in range(5):
        env.hub.route(env.kernel.calls(key, 8))  # 40 events, slow holds 10
    taken = chunks_of(slow, 4)
    assert sum(len(c) for c in taken) == 4
    env.hub.route(env.kernel.calls(key, 8))  # room for 4 more
    slow_st = slow.stats()
    assert (slow_st.delivered, slow_st.dropped, slow_st.queued) == (4, 34, 10)
    assert slow_st.delivered + slow_st.dropped + slow_st.queued == 48
    assert seqs(taken) == [1, 2, 3, 4]
    assert seqs(chunks_of(slow)) == [5, 6, 7, 8, 9, 10, 41, 42, 43, 44]
    assert seqs(chunks_of(fast)) == list(range(1, 49))
    js = env.hub.stats().jobs[t.status.job_id]
    assert totals(js) == (48, 48, 0, 0) and balanced(js)
    assert {(s.delivered, s.dropped, s.queued) for s in js.subscribers} == {(14, 34, 0), (48, 0, 0)}


def test_drop_oldest_cuts_the_oldest_chunks(env: Env) -> None:
    t = demo("old", ["getppid"])
    env.run(t)
    sub = env.hub.subscribe_batches(t, maxsize=5, overflow="drop_oldest")
    env.obs.start_container(box("c1", 1001))
    key = (1001, NR["getppid"])
    env.hub.route(env.kernel.calls(key, 3))
    env.hub.route(env.kernel.calls(key, 4))
    assert sub.qsize() == 5
    assert seqs(chunks_of(sub)) == [3, 4, 5, 6, 7]
    assert (sub.stats().delivered, sub.stats().dropped) == (5, 2)


def test_get_chunks_splits_to_max_events_and_events_api_still_works(env: Env) -> None:
    t = demo("split", ["getppid"])
    env.run(t)
    sub = env.hub.subscribe_batches(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(env.kernel.calls((1001, NR["getppid"]), 10))
    assert [len(c) for c in sub.get_chunks(3, timeout=0)] == [3]
    ev = sub.get(timeout=0)
    assert ev is not None and ev.seq == 4
    assert [e.seq for e in sub.get_batch(2, timeout=0)] == [5, 6]
    assert seqs(chunks_of(sub)) == [7, 8, 9, 10]
    assert sub.stats().delivered == 10 and sub.qsize() == 0


def test_path_batch_subscription(env: Env) -> None:
    t = demo("p", ["getppid", "openat"])
    env.run(t)
    psub = env.hub.subscribe_path_batches(("default", "p1", "c2"))
    allsub = env.hub.subscribe_path_batches(())
    env.obs.start_container(box("c1", 1001))
    env.obs.start_container(box("c2", 1002))
    env.hub.route(events(1001, "getppid", [1, 2]) + events(1002, "openat", [1, 2, 3]))
    assert [(ev.container.name, ev.seq) for c in chunks_of(psub) for ev in c.events()] == [
        ("c2", 1),
        ("c2", 2),
        ("c2", 3),
    ]
    assert sum(len(c) for c in chunks_of(allsub)) == 5


def test_ended_trace_closes_batch_queue_and_late_events_are_dropped(env: Env) -> None:
    t = demo("end", ["getppid"])
    job = env.run(t)
    sub = env.hub.subscribe_batches(job)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(env.kernel.calls((1001, NR["getppid"]), 3))
    env.hub.delete_trace(t)
    assert sub.closed and sub.qsize() == 3
    sub.put_many([EventChunk(events(1001, "getppid", [9]), ((0, 1),), {})])
    assert sub.stats().dropped == 1
    assert seqs(chunks_of(sub)) == [1, 2, 3] and chunks_of(sub) == []
