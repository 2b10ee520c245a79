"""The no-cluster default: a Hub with the HostObserver traces local pid
namespaces found in /proc, whatever the Trace's namespace.

The machine is not ours alone: other containers and long-lived pid namespaces may
exist (and are traced too by a selector-less Trace), so every assertion is about the
child's own pid namespace."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from syshub import Hub, HubConfig, Trace, TraceEvent
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, HostObserver, LocalObserver

pytestmark = pytest.mark.bpf


def _filters_of(hub: Hub, pid_ns: int) -> list[tuple[int, int]]:
    """The hub's desired (pid namespace, syscall) filters for ``pid_ns`` only: other pid
    namespaces on this machine (containers, sandboxes, ``unshare``) are traced too."""
    return [key for key in hub.desired_filters() if key[0] == pid_ns]


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
            # every pid namespace on the host is traced: keep only the child's events
            got: list[TraceEvent] = []
            end = time.monotonic() + 10
            while len(got) < 3:
                assert time.monotonic() < end, f"only {len(got)} of the child's 3 getppid calls"
                ev = sub.get(timeout=1)
                if ev is not None and ev.pid_ns == child.pid_ns:
                    got.append(ev)
            stdin.close()
            child.wait(timeout=10)
        assert [ev.syscall for ev in got] == ["getppid"] * 3
        c = got[0].container
        assert c is not None and c.pid_ns == child.pid_ns and c.pid == child.pid
        # Once the namespace is gone the observer reports a stop and its filters go.
        end = time.monotonic() + 10
        while _filters_of(hub, child.pid_ns):
            assert time.monotonic() < end, "filters stayed after the namespace died"
            time.sleep(0.05)
        assert [f for f in hub.probe.filters() if f.pid_ns == child.pid_ns] == []


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
