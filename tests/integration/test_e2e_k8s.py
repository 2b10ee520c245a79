"""End to end: Kubernetes API server -> KubernetesObserver -> CRI (real containerd) -> Hub
-> kernel probe -> events of the selected pod's processes.

The API server is the local one of ``tests/k8s_apiserver.py`` (spoken to by the real
``kubernetes`` client); the pods really run in the private containerd of the
``containerd`` fixture, with the kubelet's labels, so the observer finds their
containers through the CRI by ``io.kubernetes.pod.uid`` exactly as on a node.

One test, in stages (it shares the expensive setup):

1. events of the ``app=demo`` pod arrive, including those of short-lived children
   (``cat``), carrying the pod/namespace/container and the container's pid namespace;
2. an ``app=other`` pod running the same workload yields nothing for the job;
3. a restart of the container (same name, same sandbox) is followed: events come from
   the new pid namespace and the old one's filters are gone;
4. deleting the pod from the API server removes the job's kernel filters.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("kubernetes")

from support.k8s_apiserver import FakeApiServer
from support.k8s_objects import make_pod
from syshub import Hub, HubConfig, Trace
from syshub.topology.kubernetes import KubernetesObserver

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv
    from syshub import Subscription, TraceEvent

pytestmark = [pytest.mark.bpf, pytest.mark.containerd]

NAMESPACE = "default"
NODE = "node-e2e"
CONTAINER = "worker"
WORKLOAD = ["sh", "-c", "while true; do cat /etc/hostname >/dev/null; sleep 0.2; done"]
WAIT = 15.0  # generous upper bound of every polling loop


def pid_ns_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def wait_until(pred: Callable[[], bool], timeout: float = WAIT, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def wait_event(
    sub: Subscription, pred: Callable[[TraceEvent], bool], seen: list[TraceEvent]
) -> TraceEvent | None:
    """The first event satisfying ``pred`` within WAIT seconds; every event read is
    appended to ``seen``."""
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0:
        ev: TraceEvent | None = sub.get(timeout=min(left, 0.5))
        if ev is None:
            continue
        seen.append(ev)
        if pred(ev):
            return ev
    return None


def collect(sub: Subscription, seconds: float) -> list[TraceEvent]:
    out: list[TraceEvent] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        out.extend(sub.get_batch(timeout=min(left, 0.2)))
    return out


def is_cat(ev: TraceEvent) -> bool:
    """A call of a short-lived ``cat`` child (not the container's init shell)."""
    if ev.ns_tgid == 1:
        return False
    if ev.syscall == "openat":
        return bool(ev.comm == "cat" and ev.args.get("filename") == "/etc/hostname")
    if ev.syscall == "execve":
        return str(ev.args.get("filename", "")).endswith("cat")
    return False


def filter_namespaces(hub: Hub) -> set[int]:
    return {f.pid_ns for f in hub.probe.filters()}


def describe(events: list[TraceEvent], limit: int = 10) -> str:
    return "\n".join(
        f"  {ev.syscall} comm={ev.comm} ns_tgid={ev.ns_tgid} pid_ns={ev.pid_ns} "
        f"container={ev.container}"
        for ev in events[-limit:]
    )


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    try:
        yield server
    finally:
        server.close()


class KubeletPod:
    """A pod in containerd (with the kubelet's labels) and its object in the API server."""

    def __init__(
        self, env: ContainerdEnv, api: FakeApiServer, name: str, labels: dict[str, str]
    ) -> None:
        self.env = env
        self.api = api
        self.name = name
        self.labels = labels
        self.uid = str(uuid.uuid4())
        self.sandbox = env.run_pod(name, NAMESPACE, labels=labels, uid=self.uid)
        self.container = env.run_container(self.sandbox, CONTAINER, WORKLOAD)
        self.restarts = 0
        self.in_api = False
        self.in_cri = True

    @property
    def pid(self) -> int:
        return self.env.container_pid(self.container)

    def publish(self) -> None:
        pod = make_pod(
            self.name,
            NAMESPACE,
            uid=self.uid,
            labels=self.labels,
            node=NODE,
            phase="Running",
            containers={CONTAINER: self.container},
        )
        self.api.create_pod(pod)
        self.in_api = True

    def restart(self) -> None:
        """What the kubelet does when the container dies: a new one, same name and sandbox."""
        self.env.remove_container(self.container)
        self.restarts += 1
        self.container = self.env.run_container(
            self.sandbox, CONTAINER, WORKLOAD, attempt=self.restarts
        )
        new_id, restarts = self.container, self.restarts

        def mutate(pod: dict[str, Any]) -> None:
            status = pod["status"]["containerStatuses"][0]
            status["containerID"] = f"containerd://{new_id}"
            status["restartCount"] = restarts

        self.api.update_pod(NAMESPACE, self.name, mutate=mutate)

    def delete_from_api(self) -> None:
        if self.in_api:
            self.api.delete_pod(NAMESPACE, self.name)
            self.in_api = False

    def remove_from_cri(self) -> None:
        if self.in_cri:
            self.env.remove_pod(self.sandbox)
            self.in_cri = False


def test_pod_events_end_to_end(containerd: ContainerdEnv, api: FakeApiServer) -> None:
    timings: dict[str, float] = {}
    t_setup = time.monotonic()
    pods: list[KubeletPod] = []
    try:
        demo = KubeletPod(containerd, api, "demo-1", {"app": "demo"})
        pods.append(demo)
        other = KubeletPod(containerd, api, "other-1", {"app": "other"})
        pods.append(other)
        demo.publish()
        other.publish()
        demo_ns, other_ns = pid_ns_of(demo.pid), pid_ns_of(other.pid)
        assert demo_ns != other_ns
        assert demo_ns != pid_ns_of(os.getpid())
        timings["pods_running"] = time.monotonic() - t_setup

        observer = KubernetesObserver(
            api.url,
            cri_endpoint=containerd.endpoint,
            node_name=NODE,
            resync_interval=0.5,
            backoff_initial=0.05,
            backoff_max=0.5,
            poll_interval=0.02,
            request_timeout=5.0,
        )
        trace = Trace.new("e2e", ["openat", "execve"], namespace=NAMESPACE, labels="app=demo")
        with Hub(HubConfig(), observer) as hub:
            t0 = time.monotonic()
            hub.run_trace(trace)
            sub = hub.subscribe(trace)
            seen: list[TraceEvent] = []

            # 1. the demo pod's processes, short-lived children included
            cat = wait_event(sub, is_cat, seen)
            assert cat is not None, "no event of a `cat` child within 15 s:\n" + describe(seen)
            timings["first_cat_event"] = time.monotonic() - t0
            for ev in seen:
                c = ev.container
                assert c is not None, f"event without container: {ev!r}"
                assert (c.pod, c.namespace, c.name) == ("demo-1", NAMESPACE, CONTAINER), ev
                assert c.pod_uid == demo.uid and c.id == demo.container
                assert ev.pid_ns == c.pid_ns == demo_ns, ev
            assert cat.syscall in ("openat", "execve")
            assert filter_namespaces(hub) == {demo_ns}

            # 2. the app=other pod runs the same workload but is not the job's
            assert wait_until(lambda: hub.topology.lookup_container(other_ns) is not None), (
                "the hub's topology never saw the other pod"
            )
            window = collect(sub, 2.0)
            assert window, "the demo pod went quiet"
            stray = [ev for ev in window if ev.container is None or ev.container.pod != "demo-1"]
            assert not stray, "events of other pods:\n" + describe(stray)
            assert {ev.pid_ns for ev in window} == {demo_ns}
            assert any(is_cat(ev) for ev in window)
            assert other_ns not in filter_namespaces(hub)
            assert os.path.exists(f"/proc/{other.pid}"), "the other workload is not running"

            # 3. a restarted container (same name, same sandbox) is followed
            # The kernel recycles namespace inode numbers at once: keep the old pid
            # namespace alive (an open fd) so the new container's gets a distinct inode.
            old_pid, old_id = demo.pid, demo.container
            old_ns_fd = os.open(f"/proc/{old_pid}/ns/pid", os.O_RDONLY)
            try:
                t1 = time.monotonic()
                demo.restart()
                new_ns = pid_ns_of(demo.pid)
            finally:
                os.close(old_ns_fd)
            assert new_ns != demo_ns and demo.pid != old_pid and demo.container != old_id
            seen = []
            fresh = wait_event(sub, lambda ev: ev.pid_ns == new_ns and is_cat(ev), seen)
            assert fresh is not None, (
                "no event from the restarted container within 15 s:\n" + describe(seen)
            )
            timings["restart_to_event"] = time.monotonic() - t1
            c = fresh.container
            assert c is not None
            assert (c.pod, c.namespace, c.name) == ("demo-1", NAMESPACE, CONTAINER)
            assert c.id == demo.container and c.pid_ns == new_ns
            assert wait_until(lambda: filter_namespaces(hub) == {new_ns}), (
                f"filters after the restart: {hub.probe.filters()}"
            )
            after = collect(sub, 0.5)
            assert {ev.pid_ns for ev in after} <= {new_ns}

            # 4. deleting the pod from the API server releases the job's filters
            t2 = time.monotonic()
            demo.delete_from_api()
            assert wait_until(lambda: new_ns not in filter_namespaces(hub)), (
                f"filters still there after the pod was deleted: {hub.probe.filters()}"
            )
            timings["delete_to_filters_gone"] = time.monotonic() - t2
            assert hub.probe.filters() == []
            demo.remove_from_cri()
            assert hub.desired_filters() == {}

            hub.delete_trace(trace)
            assert hub.probe.filters() == []
        timings["total"] = time.monotonic() - t_setup
    finally:
        for pod in pods:
            pod.delete_from_api()
            pod.remove_from_cri()
    for key, value in timings.items():
        containerd.timings[f"e2e_{key}"] = value
