"""A job's drops split by reason: a flooding pid namespace traced by one Hub
job into a small ring. The kernel counts over-share drops per key; the job's
:class:`~syshub.JobKeyStats` and :class:`~syshub.hub.JobStats` carry them
(part of ``dropped``), and so do the agent's Stats counters."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from syshub import Hub, HubConfig, Trace, syscalls
from syshub.agent import convert
from syshub.hub import Target
from syshub.nsproc import NamespacedProcess
from syshub.topology import LocalObserver

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr


def test_a_jobs_over_share_drops_are_counted_per_key_and_in_stats(loop_bin: Path) -> None:
    hub = Hub(HubConfig(ring_bytes=1 << 18, poll_ms=50), LocalObserver()).start()
    try:
        argv = [str(loop_bin), "getppid", "--secs", "2"]
        with NamespacedProcess(argv, stdout=subprocess.DEVNULL) as flood:
            job = hub.run_trace(
                Trace.new("flood", ["getppid"]), target=Target.pid_namespace(flood.pid_ns)
            )
            assert hub.wait_applied(job, timeout=10)
            sub = hub.subscribe(job, maxsize=1 << 20)
            flood.release()
            while flood.poll() is None:
                sub.get_batch(1 << 16, timeout=0.1)
                time.sleep(0.05)  # a slow consumer: the ring fills
            assert flood.wait(timeout=10) == 0
        hub.delete_trace(job)
        st = hub.stats()
        assert st.probe is not None
        key = st.probe.key(flood.pid_ns, GETPPID)
        js = st.jobs[job.job_id]
        assert key is not None and len(js.keys) == 1
        jk = js.keys[0]
        print(f"key {key}\njob key {jk}")
        # The job is alone on its key at rate 1: its drops are the key's.
        assert jk.matched == jk.delivered + jk.dropped + jk.sampled_out
        assert (jk.matched, jk.dropped) == (key.matched, key.dropped)
        assert 0 < key.over_share <= key.dropped
        assert jk.over_share == key.over_share == js.over_share
        resp = convert.stats_response("n", st, {}, [])
        (pj,) = resp.jobs
        assert pj.counters.over_share == js.over_share == pj.keys[0].counters.over_share
        pk = [k for k in resp.keys if (k.pid_ns, k.nr) == (flood.pid_ns, GETPPID)]
        assert pk[0].counters.over_share == key.over_share
    finally:
        hub.stop()
