"""A pid namespace inode reused: the kernel hands a dead namespace's inode
to the next new namespace at once, so a filter left on it would trace a
stranger. The Hub holds a traced container's namespace open until the
container's STOP has removed its filters: a namespace born while the dead
container is still held gets another inode and is not traced; once the STOP
is processed, a namespace that reuses the inode is traced only if the
observer announces it as a container the Trace selects."""

from __future__ import annotations

import sys
import time

import pytest

from syshub import Hub, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf

TICK = [sys.executable, "-c", "import os, time\nwhile 1: os.getppid(); time.sleep(0.002)"]


def box(p: NamespacedProcess, name: str) -> Container:
    return Container(id=name, name=name, pid=p.pid, pid_ns=p.pid_ns, pod=name, namespace="reuse")


def pid_namespaces_seen(hub: Hub, trace: Trace, secs: float) -> set[int]:
    sub = hub.subscribe(trace)
    seen: set[int] = set()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        seen.update(ev.pid_ns for ev in sub.get_batch(4096, timeout=0.1))
    sub.close()
    return seen


def test_a_reused_namespace_inode_is_never_traced_by_a_stale_filter(
    hub_obs: tuple[Hub, LocalObserver],
) -> None:
    hub, obs = hub_obs
    trace = Trace.new("reuse", ["getppid"], namespace="reuse")
    hub.run_trace(trace)
    assert hub.wait_applied(trace, timeout=10)
    a = NamespacedProcess(TICK)
    a.release()
    ca = box(a, "a")
    obs.start_container(ca)
    end = time.monotonic() + 5
    while a.pid_ns not in {k[0] for k in hub.desired_filters()} and time.monotonic() < end:
        time.sleep(0.02)
    assert pid_namespaces_seen(hub, trace, 0.5) == {a.pid_ns}
    # A dies; its STOP is not processed yet: the Hub still holds its namespace.
    a.kill()
    a.wait(timeout=10)
    a.close()
    with NamespacedProcess(TICK) as b:
        b.release()
        assert b.pid_ns != a.pid_ns, "a held namespace's inode was reused"
        assert b.pid_ns not in pid_namespaces_seen(hub, trace, 0.5)
    # The STOP releases the filters and the hold; the inode may now be reused.
    obs.stop_container(ca)
    end = time.monotonic() + 5
    while a.pid_ns in {k[0] for k in hub.desired_filters()} and time.monotonic() < end:
        time.sleep(0.02)
    assert a.pid_ns not in {k[0] for k in hub.desired_filters()}
    reused = None
    for _ in range(100):  # the next namespaces usually take the freed inode
        c = NamespacedProcess(TICK)
        if c.pid_ns == a.pid_ns:
            reused = c
            break
        c.kill()
        c.close()
    if reused is None:
        # Inode numbers come from one allocator shared by every namespace type and
        # by other processes on the machine: another namespace may keep taking the
        # freed number. Nothing to check then, and nothing wrong.
        pytest.skip("the kernel did not give the freed inode to a pid namespace in 100 tries")
    with reused:
        reused.release()
        # Not a container the observer announced: not traced.
        assert pid_namespaces_seen(hub, trace, 0.5) == set()
        obs.start_container(box(reused, "c"))
        end = time.monotonic() + 5
        while reused.pid_ns not in {k[0] for k in hub.desired_filters()}:
            assert time.monotonic() < end, "the new container got no filter"
            time.sleep(0.02)
        assert pid_namespaces_seen(hub, trace, 0.5) == {reused.pid_ns}
        obs.stop_container(box(reused, "c"))
    hub.delete_trace(trace)
