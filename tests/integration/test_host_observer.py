"""The no-cluster default: a Hub with the HostObserver traces local pid
namespaces found in /proc, whatever the Trace's namespace."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from syshub.hub.service import Hub, HubConfig
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, HostObserver, LocalObserver
from syshub.spec.trace import Trace

pytestmark = pytest.mark.bpf


def test_hub_with_host_observer_traces_a_local_namespace(known_calls: Path) -> None:
    obs = HostObserver(poll_interval=0.1)
    with Hub(HubConfig(), obs) as hub:
        trace = Trace.new("local", ["getppid"])  # namespace "default", no selectors
        hub.run_trace(trace)
        sub = hub.subscribe(trace)
        with NamespacedProcess([str(known_calls), "wait"], stdin=-1) as child:
            child.release()
            end = time.monotonic() + 10
            while (child.pid_ns, 110) not in hub.desired_filters():
                assert time.monotonic() < end, "the host observer never reported the namespace"
                time.sleep(0.05)
            stdin = child._relay.stdin
            assert stdin is not None
            stdin.write(b"xyz")
            stdin.flush()
            got = [sub.get(timeout=5) for _ in range(3)]
            stdin.close()
            child.wait(timeout=10)
        assert all(ev is not None for ev in got)
        assert {ev.pid_ns for ev in got} == {child.pid_ns}
        c = got[0].container
        assert c is not None and c.pid_ns == child.pid_ns and c.pid == child.pid
        # Once the namespace is gone the observer reports a stop and the filter goes.
        end = time.monotonic() + 10
        while hub.desired_filters():
            assert time.monotonic() < end, "filters stayed after the namespace died"
            time.sleep(0.05)
        assert hub.probe.filters() == []


def _holds(pid_ns: int) -> int:
    """How many of our descriptors hold pid namespace ``pid_ns`` open."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"pid:[{pid_ns}]":
                n += 1
        except OSError:
            continue
    return n


def test_hub_holds_traced_pid_namespaces_open(known_calls: Path) -> None:
    """A dead namespace's inode is reused at once: while a job traces a
    container the hub keeps its pid namespace open, and lets go on stop."""
    obs = LocalObserver()
    with Hub(HubConfig(), obs) as hub:
        trace = Trace.new("hold", ["getppid"], labels="app=demo")
        hub.run_trace(trace)
        with NamespacedProcess([str(known_calls), "wait"], stdin=-1) as child:
            c = Container(
                id="c1", name="w", pid=child.pid, pid_ns=child.pid_ns, labels={"app": "demo"}
            )
            own = _holds(child.pid_ns)  # NamespacedProcess holds it too
            obs.start_container(c)
            end = time.monotonic() + 10
            while (child.pid_ns, 110) not in hub.desired_filters():
                assert time.monotonic() < end
                time.sleep(0.02)
            assert _holds(child.pid_ns) == own + 1
            obs.stop_container(c)
            end = time.monotonic() + 10
            while hub.desired_filters():
                assert time.monotonic() < end
                time.sleep(0.02)
            assert _holds(child.pid_ns) == own
            assert hub.probe.filters() == []
            child.release()
