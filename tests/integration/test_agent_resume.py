"""A restarted agent resumes the traces created through its API (local mode,
no Kubernetes): they are kept in its state directory (one file per trace,
mode 0600), run again with the same job id after a SIGKILL or a SIGTERM, and
their events flow to new streams. A deleted trace's file is gone; a trace
whose duration elapsed while the agent was down is not resumed; a file that
does not parse is skipped with one log line."""

from __future__ import annotations

import json
import signal
import stat
import time
from pathlib import Path

import pytest

from support.agent_env import AgentProcess, Collector, Workload, seen_by_host_observer, wait_until

pytestmark = pytest.mark.bpf


def state_files(agent: AgentProcess) -> list[Path]:
    return sorted((agent.workdir / f"{agent.node}.state").glob("trace-*.json"))


def test_a_trace_survives_sigkill_and_its_events_flow_again(
    known_calls: Path, tmp_path: Path
) -> None:
    w = Workload(known_calls, tmp_path)
    agent = AgentProcess(tmp_path, node="resume").start()
    try:
        assert wait_until(lambda: seen_by_host_observer(w.name))
        c = agent.client()
        info = c.create_trace(w.manifest("r1"), wait_applied=10)
        (f,) = state_files(agent)
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
        s = Collector(c, "r1")
        assert wait_until(lambda: len(c.stats().streams) == 1)
        w.calls(3)
        assert len(s.wait_events(3)) == 3
        agent.signal(signal.SIGKILL)
        agent.wait()
        s.join()

        again = AgentProcess(tmp_path, node="resume").start()
        try:
            c2 = again.client()
            (t,) = c2.list_traces()
            assert (t.name, t.namespace, t.job_id, t.state) == ("r1", "default", info.job_id,
                                                                 "Running")  # fmt: skip
            assert wait_until(lambda: c2.get_trace("r1").applied, timeout=10)
            s2 = Collector(c2, "r1")
            assert wait_until(lambda: len(c2.stats().streams) == 1)
            w.calls(5)
            events = s2.wait_events(5)
            assert len(events) == 5 and {e["syscall"]["name"] for e in events} == {"sys_getppid"}
            resumed = [r for r in again.log_records() if r.get("msg") == "trace resumed"]
            assert [r["trace"] for r in resumed] == ["default/r1"]
            # SIGTERM: stopping is not deleting, the next agent resumes it too.
            assert again.stop() == 0
            s2.join()
            assert len(state_files(again)) == 1
            third = AgentProcess(tmp_path, node="resume").start()
            try:
                assert [x.name for x in third.client().list_traces()] == ["r1"]
                third.client().delete_trace("r1")
                assert state_files(third) == []
            finally:
                assert third.stop() == 0
            fourth = AgentProcess(tmp_path, node="resume").start()
            try:
                assert fourth.client().list_traces() == []
            finally:
                assert fourth.stop() == 0
        finally:
            again.stop()
    finally:
        w.close()
        agent.stop()


def test_an_elapsed_trace_is_not_resumed_and_a_bad_file_is_skipped(
    known_calls: Path, tmp_path: Path
) -> None:
    w = Workload(known_calls, tmp_path)
    agent = AgentProcess(tmp_path, node="expire").start()
    try:
        c = agent.client()
        c.create_trace(w.manifest("short", extra="  duration: 2s\n"), wait_applied=10)
        c.create_trace(w.manifest("long"), wait_applied=10)
        assert len(state_files(agent)) == 2
        agent.signal(signal.SIGKILL)
        agent.wait()
        bad = agent.workdir / f"{agent.node}.state" / "trace-0000.json"
        bad.write_text('{"version": 1, "manifest": {"kind": "Nope"}}')
        good = next(p for p in state_files(agent) if "long" in p.read_text())
        json.loads(good.read_text())  # a plain JSON document
        time.sleep(2.5)  # the short trace's duration elapses while no agent runs

        again = AgentProcess(tmp_path, node="expire").start()
        try:
            assert [t.name for t in again.client().list_traces()] == ["long"]
            logs = again.log_records()
            skipped = [r for r in logs if r.get("msg") == "stored trace skipped"]
            assert len(skipped) == 1 and skipped[0]["file"] == str(bad)
            gone = [r for r in logs if r.get("msg") == "stored trace not resumed"]
            assert [(r["trace"], r["reason"]) for r in gone] == [
                ("default/short", "its duration has elapsed")
            ]
            assert bad.exists() and len(state_files(again)) == 2  # long + the bad one
        finally:
            assert again.stop() == 0
    finally:
        w.close()
        agent.stop()
