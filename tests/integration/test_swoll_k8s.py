"""An all-namespaces Trace (``metadata.namespace: ""``, swoll's meaning) end to end:
Kubernetes API server -> KubernetesObserver -> CRI (real containerd) -> Hub -> kernel probe.

Three pods really run in containerd, each container in its own pid namespace: ``app=demo``
in Kubernetes namespaces ``team-a`` and ``team-b``, and ``app=other`` in ``team-b``. A
swoll manifest without a name, of every namespace, selecting ``app=demo`` gets the events
of both demo pods (both namespaces) and none of the other pod; a Trace of ``team-a`` run at
the same time gets only team-a's."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("kubernetes")

from support.k8s_apiserver import FakeApiServer
from support.k8s_objects import make_pod
from syshub import Hub, HubConfig, Trace
from syshub.topology.kubernetes import KubernetesObserver

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv
    from syshub import TraceEvent

pytestmark = [pytest.mark.bpf, pytest.mark.containerd]

NODE = "node-swoll"
CONTAINER = "worker"
WORKLOAD = ["sh", "-c", "while true; do cat /etc/hostname >/dev/null; sleep 0.2; done"]
WAIT = 20.0

#: What swoll's REST API creates: no name, every namespace, duration "0s".
SWOLL_TRACE = {
    "apiVersion": "tools.swoll.criticalstack.com/v1alpha1",
    "kind": "Trace",
    "metadata": {"namespace": ""},
    "spec": {
        "labelSelector": {"matchLabels": {"app": "demo"}},
        "syscalls": ["sys_openat", "sys_execve"],
        "duration": "0s",
    },
}


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    try:
        yield server
    finally:
        server.close()


class Pod:
    """A pod in containerd (kubelet labels) and its object in the API server."""

    def __init__(
        self, env: ContainerdEnv, api: FakeApiServer, name: str, namespace: str, app: str
    ) -> None:
        self.env, self.api, self.name, self.namespace = env, api, name, namespace
        uid = str(uuid.uuid4())
        labels = {"app": app}
        self.sandbox = env.run_pod(name, namespace, labels=labels, uid=uid)
        self.container = env.run_container(self.sandbox, CONTAINER, WORKLOAD)
        pod = make_pod(
            name,
            namespace,
            uid=uid,
            labels=labels,
            node=NODE,
            phase="Running",
            containers={CONTAINER: self.container},
        )
        api.create_pod(pod)
        self.pid_ns = os.stat(f"/proc/{env.container_pid(self.container)}/ns/pid").st_ino

    def remove(self) -> None:
        try:
            self.api.delete_pod(self.namespace, self.name)
        finally:
            self.env.remove_pod(self.sandbox)


def is_cat(ev: TraceEvent) -> bool:
    return (
        ev.syscall == "openat" and ev.comm == "cat" and ev.args.get("filename") == "/etc/hostname"
    )


def gather(hub: Hub, trace: Trace, want: set[str], seconds: float) -> list[TraceEvent]:
    """Events of ``trace`` until a ``cat`` of every namespace in ``want`` was seen (or
    ``seconds`` passed), then half a second more."""
    sub = hub.subscribe(trace)
    out: list[TraceEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.extend(sub.get_batch(timeout=0.2))
        seen = {ev.container.namespace for ev in out if ev.container and is_cat(ev)}
        if want <= seen:
            break
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        out.extend(sub.get_batch(timeout=0.1))
    return out


def test_all_namespaces_trace_end_to_end(containerd: ContainerdEnv, api: FakeApiServer) -> None:
    pods: list[Pod] = []
    try:
        pods.append(Pod(containerd, api, "demo-a", "team-a", "demo"))
        pods.append(Pod(containerd, api, "demo-b", "team-b", "demo"))
        pods.append(Pod(containerd, api, "other-b", "team-b", "other"))
        ns_of = {p.name: p.pid_ns for p in pods}
        assert len(set(ns_of.values())) == 3, "each container has its own pid namespace"
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
        every = Trace.from_dict(SWOLL_TRACE)
        assert every.all_namespaces and every.name.startswith("trace-")
        assert every.spec.duration is None
        team_a = Trace.new("team-a-only", ["openat"], namespace="team-a", labels="app=demo")
        with Hub(HubConfig(), observer) as hub:
            job = hub.run_trace(every)
            hub.run_trace(team_a)
            assert hub.wait_applied(every, timeout=WAIT) and hub.wait_applied(team_a, timeout=WAIT)
            assert job.duration.total_seconds() == 0  # no limit: no timer
            got = gather(hub, every, {"team-a", "team-b"}, WAIT)
            cats = [ev for ev in got if is_cat(ev)]
            by_ns = {ev.container.namespace for ev in cats if ev.container}
            assert by_ns == {"team-a", "team-b"}, f"cat events of {by_ns} only, {len(got)} events"
            for ev in got:
                c = ev.container
                assert c is not None, f"event without container: {ev!r}"
                assert (c.namespace, c.pod) in {("team-a", "demo-a"), ("team-b", "demo-b")}
                assert ev.pid_ns == ns_of[c.pod]
            filters = {f.pid_ns for f in hub.probe.filters()} if hub.probe else set()
            assert ns_of["demo-a"] in filters and ns_of["demo-b"] in filters
            assert ns_of["other-b"] not in filters
            only_a = gather(hub, team_a, {"team-a"}, WAIT)
            assert any(is_cat(ev) for ev in only_a)
            assert {ev.container.namespace for ev in only_a if ev.container} == {"team-a"}
            # swoll's document of such an event names the pod and its namespace.
            doc = cats[0].to_dict(style="swoll")
            assert doc["container"]["namespace"] in ("team-a", "team-b")
            assert doc["args"]["pathname"] == "/etc/hostname"
            hub.delete_trace(every)
            hub.delete_trace(team_a)
            assert hub.probe is not None and hub.probe.filters() == []
        assert every.to_dict()["status"]["job"] == job.job_id
        assert "completionTime" in every.to_dict()["status"]
    finally:
        for pod in pods:
            pod.remove()
