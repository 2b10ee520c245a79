"""containerd down for 30 s while a Hub traces its containers through the CRI
observer: the containers keep running and stay traced; a container that dies
while containerd is down loses its filter once containerd is back (no stale
filter); a container started after it is back is traced (none missed). At the
end the Hub's filters are exactly the CRI's running containers'."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from containerd_env import ContainerdEnv

from support.faults import HiddenSocket, containerd_down, containerd_up
from syshub import Hub, HubConfig, Trace
from syshub.nsproc import pid_namespace_inode

pytestmark = pytest.mark.bpf

DOWN_S = 30.0
# Back within gRPC's reconnect backoff plus the observer's (at most 10 s).
BACK_S = 60.0


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def traced(hub: Hub) -> set[int]:
    return {ns for ns, _nr in hub.desired_filters()}


def running_namespaces(env: ContainerdEnv, ids: list[str]) -> set[int]:
    out = set()
    for c in env.client.list_containers(state_running_only=True):
        if c.id in ids:
            out.add(pid_namespace_inode(env.container_pid(c.id)))
    return out


def test_containerd_down_for_30s(containerd: ContainerdEnv) -> None:
    env = containerd
    pod = env.run_pod("fault-ctrd", namespace="faults")
    keep = env.run_container(pod, "keep", ["sleep", "3600"])
    dies = env.run_container(pod, "dies", ["sleep", "3600"])
    keep_ns = pid_namespace_inode(env.container_pid(keep))
    dies_pid = env.container_pid(dies)
    dies_ns = pid_namespace_inode(dies_pid)
    hub = Hub(HubConfig(cri_endpoint=env.endpoint)).start()
    try:
        trace = Trace.new("ctrd", ["getppid"], namespace="faults")
        hub.run_trace(trace)
        assert hub.wait_applied(trace, timeout=30)
        assert {keep_ns, dies_ns} <= traced(hub)

        containerd_down(env)
        t_down = time.monotonic()
        os.kill(dies_pid, signal.SIGKILL)  # dies while nobody can report it
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_down)))
        # Still traced while the runtime is away: what is known is kept.
        assert keep_ns in traced(hub)
        containerd_up(env)

        wait_for(lambda: dies_ns not in traced(hub), BACK_S, "the dead container's filter to go")
        late = env.run_container(pod, "late", ["sleep", "3600"])
        late_ns = pid_namespace_inode(env.container_pid(late))
        wait_for(lambda: late_ns in traced(hub), BACK_S, "the new container to be traced")
        assert traced(hub) == running_namespaces(env, [keep, dies, late])

        # The socket gone (moved aside) for a while, then back: same again.
        with HiddenSocket(env.socket):
            time.sleep(5)
            assert {keep_ns, late_ns} <= traced(hub)
        env.remove_container(late)
        wait_for(lambda: late_ns not in traced(hub), BACK_S, "the removed container's filter")
        assert traced(hub) == running_namespaces(env, [keep])
        hub.delete_trace(trace)
    finally:
        hub.stop()
        env.remove_pod(pod)
