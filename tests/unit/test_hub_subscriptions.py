"""Hub subscribers without privileges: bounded queues with their own
overflow counters (the producer never blocks), typed SubscriberStats,
callbacks on worker threads (unsubscribe from inside, errors contained),
async iteration (cancellation loses nothing), and the end of a
subscription with its trace."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from support.hub_env import NR, Env, box, demo, drain, events, running_env, totals, wait_until
from syshub import HubError, Overflow, SubscriberStats, Subscription, TraceEvent


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


# --------------------------------------------------------------------------- overflow


def test_slow_subscriber_loses_only_its_own_events(env: Env) -> None:
    n = 100
    t = demo("a", ["getppid"])
    job = env.run(t)
    env.obs.start_container(box("c1", 1001))
    full = env.hub.subscribe(t)
    newest = env.hub.subscribe(t, maxsize=10, overflow=Overflow.DROP_NEWEST)
    oldest = env.hub.subscribe(t, maxsize=10, overflow="drop_oldest")
    path_slow = env.hub.subscribe_path(("default",), maxsize=3, name="slow-path")
    batch = env.kernel.calls((1001, NR["getppid"]), n)
    # The producer never blocks on a full queue.
    th = threading.Thread(target=env.hub.route, args=(batch,))
    t0 = time.monotonic()
    th.start()
    th.join(timeout=5)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 2
    before = env.hub.stats().jobs[job.job_id].subscribers
    assert [(s.delivered, s.dropped, s.queued) for s in before] == [
        (0, 0, n),
        (0, n - 10, 10),
        (0, n - 10, 10),
    ]
    assert [e.seq for e in drain(full)] == list(range(1, n + 1))
    assert [e.seq for e in drain(newest)] == list(range(1, 11))
    assert [e.seq for e in drain(oldest)] == list(range(n - 9, n + 1))
    assert [e.seq for e in drain(path_slow)] == [1, 2, 3]
    name = job.job_id
    assert full.stats() == SubscriberStats(name, delivered=n, dropped=0, queued=0)
    assert newest.stats() == SubscriberStats(name, delivered=10, dropped=n - 10, queued=0)
    assert oldest.stats() == SubscriberStats(name, delivered=10, dropped=n - 10, queued=0)
    assert path_slow.stats() == SubscriberStats("slow-path", delivered=3, dropped=n - 3, queued=0)
    js = env.hub.stats().jobs[job.job_id]
    assert [s.dropped for s in js.subscribers] == [0, n - 10, n - 10]
    # The job itself delivered everything: drops are the subscribers' own.
    assert totals(js) == (n, n, 0, 0)
    # Every subscriber's delivered + dropped + queued is the job's delivered.
    for s in js.subscribers:
        assert s.delivered + s.dropped + s.queued == js.delivered


def test_subscription_rejects_bad_maxsize_and_overflow(env: Env) -> None:
    t = demo("a", ["getppid"])
    env.run(t)
    with pytest.raises(ValueError):
        env.hub.subscribe(t, maxsize=0)
    with pytest.raises(ValueError):
        env.hub.subscribe(t, overflow="block")
    with pytest.raises(HubError, match="no job"):
        env.hub.subscribe(demo("never-run", ["getppid"]))


def test_path_subscription_rejects_too_long_paths(env: Env) -> None:
    with pytest.raises(HubError, match="at most 4 parts"):
        env.hub.subscribe_path(("default", "p1", "c1", "getppid", "extra"))


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
    assert len(env.hub.stats().jobs[job_id].subscribers) == 1
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
    assert sub.stats().delivered == 1


# --------------------------------------------------------------------------- end of a trace


def test_subscription_ends_when_its_trace_is_deleted(env: Env) -> None:
    t = demo("ends", ["getppid"])
    job = env.run(t)
    sub = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(env.kernel.calls((1001, NR["getppid"]), 3))
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
    # The ended subscriber is still in the job's stats.
    js = env.hub.stats().jobs[job.job_id]
    assert js.state == "Complete"
    assert js.subscribers == (SubscriberStats(job.job_id, 3, 0, 0),)
    assert totals(js) == (3, 3, 0, 0)


def test_queued_events_stay_readable_after_delete(env: Env) -> None:
    t = demo("queued", ["getppid"], sample_rate=2)
    job = env.run(t)
    sub = env.hub.subscribe(t)
    env.obs.start_container(box("c1", 1001))
    env.hub.route(env.kernel.calls((1001, NR["getppid"]), 10))
    env.hub.delete_trace(t)
    assert sub.closed
    assert sub.stats().queued == 5
    assert [e.seq for e in sub.get_batch(100, timeout=0)] == [2, 4, 6, 8, 10]
    assert sub.get_batch(100, timeout=1) == []  # closed and empty: no wait
    js = env.hub.stats().jobs[job.job_id]
    assert totals(js) == (10, 5, 0, 5)
    assert js.subscribers == (SubscriberStats(job.job_id, 5, 0, 0),)


def test_events_routed_to_a_closed_queue_are_counted_as_dropped() -> None:
    """A batch routed while its trace ends (the queue already closed) is lost
    to the subscriber, never uncounted: delivered + dropped + queued holds."""
    sub = Subscription("closing", maxsize=8)
    sub.put_many([1, 2, 3])
    sub.close()
    assert sub.put_many([4, 5]) == 2
    assert sub.put(6) is False
    assert sub.get_batch(10, timeout=0) == [1, 2, 3]
    st = sub.stats()
    assert (st.delivered, st.dropped, st.queued) == (3, 3, 0)
