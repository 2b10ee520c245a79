"""How the agent ends: SIGTERM ends every stream with its final counters,
stops the Hub and removes the socket; SIGKILL leaves no kernel object (nothing
is pinned: bpftool's program, map and link lists before and after); a new
agent takes over a killed agent's stale socket (and resumes its traces:
test_agent_resume.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from support.agent_env import (
    AgentProcess,
    Collector,
    Workload,
    held_objects,
    live_objects,
    prog_names,
    seen_by_host_observer,
    wait_until,
)

pytestmark = pytest.mark.bpf


def _workload(known_calls: Path, tmp_path: Path) -> Workload:
    w = Workload(known_calls, tmp_path)
    assert wait_until(lambda: seen_by_host_observer(w.name)), "workload never ran"
    return w


def test_sigterm_ends_streams_with_final_counters(known_calls: Path, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, node="term").start()
    w = _workload(known_calls, tmp_path)
    try:
        c = agent.client()
        c.create_trace(w.manifest("t1"), wait_applied=10)
        s1, s2 = Collector(c, "t1"), Collector(agent.client(), path="")
        assert wait_until(lambda: len(c.stats().streams) == 2)
        assert agent.proc is not None
        held = held_objects(agent.proc.pid)
        w.calls(7)
        s1.wait_events(7)
        agent.signal(signal.SIGTERM)
        assert agent.wait() == 0, agent.logs()
        for s in (s1, s2):
            s.join()
            assert s.error is None, s.error
            final = s.final
            assert final is not None and final.end_reason == "agent stopping", s.batches[-1:]
        fc = s1.final.counters
        assert (fc.matched, fc.delivered, fc.dropped, fc.queued) == (7, 7, 0, 0)
        assert len([e for e in s2.events if e["container"]["name"] == w.name]) == 7
        assert not agent.socket.exists()
        msgs = [r["msg"] for r in agent.log_records()]
        assert "agent stopped" in msgs and all(r["level"] != "error" for r in agent.log_records())
        assert held.progs and held.maps

        def freed() -> bool:
            live = live_objects()
            return not (held.progs & live.progs or held.maps & live.maps or held.links & live.links)

        assert wait_until(freed, timeout=10), f"left behind: {held}"
    finally:
        w.close()
        agent.stop()


def test_sigkill_leaves_no_kernel_objects(known_calls: Path, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, node="kill").start()
    w = _workload(known_calls, tmp_path)
    try:
        c = agent.client()
        c.create_trace(w.manifest("k1"), wait_applied=10)
        s = Collector(c, "k1")
        assert wait_until(lambda: len(c.stats().streams) == 1)
        w.calls(3)
        s.wait_events(3)
        assert agent.proc is not None
        mine = held_objects(agent.proc.pid)  # the agent's own descriptors
        live = live_objects()
        assert mine.progs and mine.maps and mine.progs <= live.progs and mine.maps <= live.maps
        names = prog_names()
        assert all(names[p].startswith("syshub_") for p in mine.progs), names
        agent.signal(signal.SIGKILL)
        agent.wait()

        def freed() -> bool:
            live = live_objects()
            return not (mine.progs & live.progs or mine.maps & live.maps or mine.links & live.links)

        assert wait_until(freed, timeout=10), f"left behind: {mine} in {live_objects()}"
        s.join()
        assert s.final is None and s.error is not None  # no final message: the agent died
        # a new agent takes over the stale socket, and resumes the trace
        again = AgentProcess(tmp_path, node="kill").start()
        try:
            assert [t.name for t in again.client().list_traces()] == ["k1"]
            again.client().delete_trace("k1")
            assert again.client().list_traces() == []
        finally:
            assert again.stop() == 0
    finally:
        w.close()
        agent.stop()


def test_agent_refuses_a_live_socket(tmp_path: Path) -> None:
    a = AgentProcess(tmp_path, node="dup").start()
    try:
        b = AgentProcess(tmp_path, node="dup").start(wait=False)
        assert b.wait(30) == 2
        assert "another agent is listening" in b.logs()
        assert a.client().list_traces() == []
    finally:
        assert a.stop() == 0


def test_a_stalled_client_does_not_hold_the_shutdown(known_calls: Path, tmp_path: Path) -> None:
    """A stream whose client never reads does not keep the agent past its grace."""
    agent = AgentProcess(tmp_path, ["--shutdown-grace", "2"], node="grace").start()
    w = _workload(known_calls, tmp_path)
    try:
        c = agent.client()
        c.create_trace(w.manifest("g1"), wait_applied=10)
        call = c.watch_raw("g1", queue=16, max_batch=4)
        assert wait_until(lambda: len(c.stats().streams) == 1)
        w.calls(5000)
        assert wait_until(lambda: c.stats("g1").jobs[0].counters.matched == 5000)
        t0 = time.monotonic()
        agent.signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0, agent.logs()
        assert time.monotonic() - t0 < 2 + 5
        assert not agent.socket.exists()
        call.cancel()
    finally:
        w.close()
        agent.stop()


def _one_run(known_calls: Path, tmp_path: Path, sock: Path) -> None:
    """An in-process agent: a trace, a stream with 2 events, stop."""
    from syshub.agent import Agent, build_config
    from syshub.client import AgentClient

    cfg = build_config(
        {"socket": str(sock), "node_name": "inproc", "ring_bytes": 1 << 22, "state_dir": ""}, {}
    )
    agent = Agent(cfg).start()
    w = _workload(known_calls, tmp_path)
    try:
        with AgentClient(f"unix://{sock}") as c:
            c.create_trace(w.manifest("t"), wait_applied=10)
            s = Collector(c, "t")
            assert wait_until(lambda: len(c.stats().streams) == 1)
            w.calls(2)
            s.wait_events(2)
            agent.stop()
            s.join()
            assert s.final is not None and s.final.counters.delivered == 2
    finally:
        w.close()
        agent.stop()
    assert not sock.exists()


def test_stop_leaves_no_thread_fd_or_socket(known_calls: Path, tmp_path: Path) -> None:
    """In-process: after Agent.stop() the threads and file descriptors are
    those from before, and the socket file is gone. (The first run warms up
    gRPC, whose core keeps one epoll and one eventfd for the process.)"""

    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    sock = tmp_path / "inproc.sock"
    _one_run(known_calls, tmp_path, sock)
    threads_before = set(threading.enumerate())
    fds_before = fds()
    _one_run(known_calls, tmp_path, sock)
    assert wait_until(lambda: set(threading.enumerate()) <= threads_before, timeout=5), [
        t.name for t in set(threading.enumerate()) - threads_before
    ]
    assert wait_until(lambda: fds() <= fds_before, timeout=5), fds() - fds_before
