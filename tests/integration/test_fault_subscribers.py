"""Subscribers that misbehave cannot hurt the Hub or each other: a callback
that raises on every event, one that blocks, and a subscription whose reader
stops reading and one closed mid-stream. A well-behaved subscriber of the
same Trace still gets every event, the reader loop keeps routing, and every
subscriber's losses are counted on its own queue:
delivered + dropped + queued == what the job routed to it."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from syshub import Hub, HubConfig, Target, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import LocalObserver

pytestmark = pytest.mark.bpf

CALLS = 20_000


def test_raising_blocking_and_vanishing_subscribers(loop_bin: Path) -> None:
    hub = Hub(HubConfig(ring_bytes=16 << 20), LocalObserver()).start()
    block = threading.Event()
    raised: list[int] = []
    try:
        with NamespacedProcess(
            [str(loop_bin), "getppid", "--count", str(CALLS)], stdout=subprocess.DEVNULL
        ) as child:
            trace = Trace.new("faulty-subscribers", ["getppid"])
            job = hub.run_trace(trace, target=Target.process(child.pid))
            good = hub.subscribe(job)
            stalled = hub.subscribe(job, maxsize=100)  # nobody reads it
            closed = hub.subscribe(job)

            def boom(_key: str, _ev: object) -> None:
                raised.append(1)
                raise RuntimeError("subscriber bug")

            def stuck(_key: str, _ev: object) -> None:
                block.wait(60)

            hub.attach_trace(job, boom)
            hub.attach_trace(job, stuck, maxsize=100)
            assert hub.wait_applied(trace, timeout=10)
            child.release()
            got = 0
            closed_at: int | None = None
            while True:
                batch = good.get_batch(65536, timeout=0.2)
                got += len(batch)
                if closed_at is None and got > CALLS // 4:
                    closed.close()  # the client goes away mid-stream
                    closed_at = got
                if not batch and child.poll() is not None:
                    break
            assert child.wait(timeout=30) == 0
            hub.delete_trace(trace)
            got += sum(len(b) for b in iter(lambda: good.get_batch(65536, timeout=0.2), []))
            # The raising callback went through every event, one exception each.
            end = time.monotonic() + 20
            while len(raised) < got and time.monotonic() < end:
                time.sleep(0.05)
            st = hub.stats()
    finally:
        block.set()
        hub.stop()
    js = st.jobs[job.job_id]
    assert js.matched == js.delivered + js.dropped + js.sampled_out
    assert js.dropped == 0 and js.delivered >= CALLS, js
    assert got == js.delivered, (got, js)
    # The subscription closed mid-stream left the job; the other four stay.
    assert len(js.subscribers) == 4, js.subscribers
    for s in js.subscribers:
        # Each queue accounts for every event routed to it.
        assert s.delivered + s.dropped + s.queued == js.delivered, s
    assert stalled.stats().dropped == js.delivered - 100
    # The good one and the raising one lost nothing; the blocked callback
    # holds what it took before blocking plus a full queue, the rest dropped.
    drops = sorted(s.dropped for s in js.subscribers)
    assert drops[:2] == [0, 0] and drops[2] >= js.delivered - 200, drops
    # (Usually mid-stream; a loaded machine may hand the whole run over in one batch.)
    assert closed.closed and closed_at is not None and 0 < closed_at <= js.delivered
    assert len(raised) == js.delivered
    assert st.reader_errors == 0 and st.lost == 0
