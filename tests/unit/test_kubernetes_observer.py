"""KubernetesObserver against a local API server (tests/support/k8s_apiserver.py) and a
fake CRI: pods, views (namespace, label and field selectors), restarts, ``on_synced``.

The real ``kubernetes`` client talks HTTP to the local server; the CRI is a fake whose
container pids are real processes (this test process), so pid namespace inodes are read
from /proc for real. The watch protocol itself is in ``test_kubernetes_watch.py``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from support.fake_cri import FakeCri
from support.k8s_apiserver import FakeApiServer
from support.k8s_env import _no_node_env, api, cri, make_observer, running_pod, shows, wait_until
from support.k8s_objects import make_pod
from support.observers import START, STOP, Running
from syshub.errors import KubernetesError
from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.topology import ContainerEvent, Observer
from syshub.topology.kubernetes import KubernetesObserver

__all__ = ["_no_node_env", "api", "cri", "make_observer"]  # fixtures

MY_PID = os.getpid()
MY_PID_NS = os.stat(f"/proc/{MY_PID}/ns/pid").st_ino


def test_list_then_watch_reports_start_and_stop(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    p1 = running_pod(api, cri, "web-1", labels={"app": "web"}, node="node-a")
    obs = make_observer()
    assert isinstance(obs, Observer)
    obs.connect()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.names(START) == ["web-1/main"])
    c = run.rec.of(START)[0]
    assert c.pod == "web-1" and c.namespace == "default" and c.name == "main"
    assert c.pod_uid == p1["metadata"]["uid"]
    assert c.sandbox_id == "sb-" + p1["metadata"]["uid"]
    assert c.image == "docker.io/library/busybox:1"
    assert c.pid == MY_PID and c.pid_ns == MY_PID_NS
    assert c.node == "node-a"
    assert dict(c.pod_labels) == {"app": "web"}
    assert c.labels["io.kubernetes.container.name"] == "main"
    assert p1["status"]["containerStatuses"][0]["containerID"].endswith(c.id)

    running_pod(api, cri, "web-2", containers=["app", "sidecar"])
    assert run.rec.wait_for(lambda r: r.active() == {"web-1/main", "web-2/app", "web-2/sidecar"})
    assert {x.id for x in obs.containers()} == {x.id for x in run.rec.of(START)}

    api.delete_pod("default", "web-2")
    assert run.rec.wait_for(lambda r: r.active() == {"web-1/main"})
    assert sorted(run.rec.names(STOP)) == ["web-2/app", "web-2/sidecar"]
    # one LIST, one WATCH, and per-pod CRI look-ups filtered by the pod uid label
    assert len(api.list_requests) == 1
    assert len(api.watch_requests) == 1
    assert {"io.kubernetes.pod.uid": p1["metadata"]["uid"]} not in cri.list_calls
    assert any(sel and "io.kubernetes.pod.uid" in sel for sel in cri.list_calls)
    assert run.halt() < 1.0
    assert api.wait_for_watches(0), "the watch connection stays open after the last run ended"


def test_pod_delete_stops_containers_the_cri_forgot(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    pod = running_pod(api, cri, "db", containers=["pg", "exporter"])
    obs = make_observer(resync_interval=0)  # no periodic CRI check: only the pod event
    run = Running(obs)
    assert run.rec.wait_for(lambda r: len(r.of(START)) == 2)
    cri.forget_pod(pod["metadata"]["uid"])
    time.sleep(0.1)
    assert run.rec.count() == 2
    api.delete_pod("default", "db")
    assert run.rec.wait_for(lambda r: len(r.of(STOP)) == 2)
    # STOP carries the very values START announced
    assert sorted(run.rec.of(STOP), key=lambda c: c.id) == sorted(
        run.rec.of(START), key=lambda c: c.id
    )
    assert obs.containers() == []
    run.halt()


def test_label_selectors_with_match_expressions(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a", labels={"app": "web", "tier": "front"})
    running_pod(api, cri, "b", labels={"app": "web", "tier": "back", "canary": "yes"})
    running_pod(api, cri, "c", labels={"app": "db"})
    obs = make_observer()
    views = {
        "in": obs.copy(
            label_selector={
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]
            }
        ),
        "notin": obs.copy(
            label_selector={
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]
            }
        ),
        "exists": obs.copy(
            label_selector={"matchExpressions": [{"key": "canary", "operator": "Exists"}]}
        ),
        "doesnotexist": obs.copy(
            label_selector={
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}],
            }
        ),
        "string": obs.copy(label_selector="app=web,tier in (back)"),
        "object": obs.copy(label_selector=LabelSelector.parse("app notin (web)")),
        "plain-dict": obs.copy(label_selector={"app": "db"}),
    }
    expected = {
        "in": {"a/main"},
        "notin": {"b/main", "c/main"},  # NotIn also matches a missing key
        "exists": {"b/main"},
        "doesnotexist": {"a/main"},
        "string": {"b/main"},
        "object": {"c/main"},
        "plain-dict": {"c/main"},
    }
    runs = {k: Running(v) for k, v in views.items()}
    for key, run in runs.items():
        assert run.rec.wait_for(shows(expected[key])), key
    for key, view in views.items():
        assert {f"{c.pod}/{c.name}" for c in view.containers()} == expected[key], key

    # relabel "a": it leaves "in"/"doesnotexist", joins "exists"/"notin"
    api.update_pod("default", "a", {"metadata": {"labels": {"tier": "mid", "canary": "no"}}})
    assert runs["in"].rec.wait_for(lambda r: r.active() == set())
    assert runs["in"].rec.names(STOP) == ["a/main"]
    assert runs["doesnotexist"].rec.wait_for(lambda r: r.active() == set())
    assert runs["exists"].rec.wait_for(lambda r: r.active() == {"a/main", "b/main"})
    assert runs["notin"].rec.wait_for(lambda r: r.active() == {"a/main", "b/main", "c/main"})
    # the container itself did not change: views that still match see nothing new
    time.sleep(0.1)
    assert runs["string"].rec.count() == 1
    assert runs["object"].rec.count() == 1
    assert len(api.watch_requests) == 1
    for run in runs.values():
        run.halt()


def test_field_selectors(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "one", node="node-a")
    running_pod(api, cri, "two", node="node-b", namespace="kube-system")
    pending = make_pod("three", phase="Pending")
    cri.add(pending)  # even if the CRI already had a container, a Pending pod is skipped
    api.create_pod(pending)
    obs = make_observer()
    views = {
        "running": obs.copy(field_selector="status.phase=Running"),
        "not-running": obs.copy(field_selector=FieldSelector.parse("status.phase!=Running")),
        "name": obs.copy(field_selector={"metadata.name": "two"}),
        "node": obs.copy(field_selector={"matchLabels": {"spec.nodeName": "node-a"}}),
        "namespace": obs.copy(field_selector="metadata.namespace=kube-system"),
        "ns-arg": obs.copy(namespace="kube-system"),
        "name-and-node": obs.copy(field_selector="metadata.name=two,spec.nodeName=node-a"),
    }
    expected = {
        "running": {"one/main", "two/main"},
        "not-running": set(),
        "name": {"two/main"},
        "node": {"one/main"},
        "namespace": {"two/main"},
        "ns-arg": {"two/main"},
        "name-and-node": set(),
    }
    runs = {k: Running(v) for k, v in views.items()}
    for key, run in runs.items():
        assert run.rec.wait_for(shows(expected[key])), key
    time.sleep(0.2)
    for key, run in runs.items():
        assert run.rec.active() == expected[key], key
        assert run.rec.of(STOP) == [], key
    # the pending pod starts running: phase views follow
    api.update_pod("default", "three", {"status": {"phase": "Running"}})
    assert runs["running"].rec.wait_for(
        lambda r: r.active() == {"one/main", "two/main", "three/main"}
    )
    api.update_pod("default", "one", {"status": {"phase": "Succeeded"}})
    assert runs["running"].rec.wait_for(lambda r: r.active() == {"two/main", "three/main"})
    assert runs["node"].rec.wait_for(lambda r: r.active() == {"three/main"})  # also node-a
    assert runs["node"].rec.names(STOP) == ["one/main"]
    for run in runs.values():
        run.halt()


def test_node_agent_only_sees_its_node(
    api: FakeApiServer,
    cri: FakeCri,
    make_observer: Callable[..., KubernetesObserver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running_pod(api, cri, "here", node="node-a")
    running_pod(api, cri, "there", node="node-b")
    monkeypatch.setenv("NODE_NAME", "node-a")
    obs = make_observer()
    assert obs.node_name == "node-a"
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"here/main"})
    # scheduled elsewhere, then a pod lands on this node
    running_pod(api, cri, "there-2", node="node-b")
    running_pod(api, cri, "here-2", node="node-a")
    assert run.rec.wait_for(lambda r: r.active() == {"here/main", "here-2/main"})
    time.sleep(0.1)
    assert run.rec.active() == {"here/main", "here-2/main"}
    # the API server filters for us (as for the kubelet): the node is in every request
    for req in api.list_requests + api.watch_requests:
        assert req.params.get("fieldSelector") == "spec.nodeName=node-a"
    run.halt()

    explicit = make_observer(node_name="node-b")
    assert {c.pod for c in explicit.containers()} == {"there", "there-2"}
    monkeypatch.delenv("NODE_NAME")
    everywhere = make_observer()
    assert everywhere.node_name is None
    assert {c.pod for c in everywhere.containers()} == {"here", "here-2", "there", "there-2"}


def test_views_share_one_watch_and_one_cri_client(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "x", labels={"team": "red"})
    running_pod(api, cri, "y", labels={"team": "blue"})
    obs = make_observer()
    obs.connect()
    red = obs.copy(label_selector="team=red")
    blue = red.copy()  # a copy of a copy narrows further: still only red
    other = obs.copy(label_selector="team=blue")
    runs = [Running(red), Running(blue), Running(other), Running(obs)]
    assert runs[0].rec.wait_for(lambda r: r.active() == {"x/main"})
    assert runs[1].rec.wait_for(lambda r: r.active() == {"x/main"})
    assert runs[2].rec.wait_for(lambda r: r.active() == {"y/main"})
    assert runs[3].rec.wait_for(lambda r: r.active() == {"x/main", "y/main"})
    running_pod(api, cri, "z", labels={"team": "red"})
    assert runs[0].rec.wait_for(lambda r: r.active() == {"x/main", "z/main"})
    assert runs[3].rec.wait_for(lambda r: len(r.active()) == 3)
    assert api.wait_for_watches(1)
    assert len(api.watch_requests) == 1
    assert len(api.list_requests) == 1
    assert cri.connects == 1
    assert obs.stats()["subscribers"] == 4
    # a view that stops does not end the shared watch for the others
    runs[0].halt()
    running_pod(api, cri, "w", labels={"team": "blue"})
    assert runs[2].rec.wait_for(lambda r: r.active() == {"y/main", "w/main"})
    assert len(api.watch_requests) == 1
    for run in runs[1:]:
        run.halt()
    assert api.wait_for_watches(0)


def test_container_restart_in_running_pod_is_stop_then_start(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    pod = running_pod(api, cri, "app", containers=["main", "side"])
    obs = make_observer(resync_interval=0)  # only the pod's MODIFIED event can tell
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"app/main", "app/side"})
    old = next(c for c in run.rec.of(START) if c.name == "main")
    cri.remove(old.id)
    new_id = cri.add(pod, "main")

    def restarted(p: dict[str, Any]) -> None:
        for cs in p["status"]["containerStatuses"]:
            if cs["name"] == "main":
                cs["containerID"] = f"containerd://{new_id}"
                cs["restartCount"] = 1

    api.update_pod("default", "app", mutate=restarted)
    assert run.rec.wait_for(lambda r: len(r.events) == 4)
    kinds = [(e.kind, e.container.id) for e in run.rec.events[2:]]
    assert kinds == [(STOP, old.id), (START, new_id)]
    assert run.rec.active() == {"app/main", "app/side"}
    run.halt()


def test_periodic_resync_catches_restarts_without_pod_events(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    pod = running_pod(api, cri, "quiet")
    obs = make_observer(resync_interval=0.1)
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"quiet/main"})
    old_id = run.rec.of(START)[0].id
    cri.forget_pod(pod["metadata"]["uid"])
    new_id = cri.add(pod, "main")
    assert run.rec.wait_for(lambda r: len(r.events) == 3)
    assert [(e.kind, e.container.id) for e in run.rec.events[1:]] == [
        (STOP, old_id),
        (START, new_id),
    ]
    assert obs.stats()["resync_changes"] >= 1
    run.halt()


def test_new_pid_namespace_for_same_container_is_stop_then_start(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    namespaces = {MY_PID: 4026531111}

    def pid_ns(pid: int, alt_root: str) -> int:
        assert alt_root == "/host"
        try:
            return namespaces[pid]
        except KeyError:
            raise ProcessLookupError(pid) from None

    running_pod(api, cri, "ns")
    obs = make_observer(resync_interval=0.1, pid_ns_reader=pid_ns, alt_root="/host")
    run = Running(obs)
    assert run.rec.wait_for(lambda r: len(r.of(START)) == 1)
    assert run.rec.of(START)[0].pid_ns == 4026531111
    namespaces[MY_PID] = 4026532222
    assert run.rec.wait_for(lambda r: len(r.events) == 3)
    first, second = run.rec.events[1:]
    assert (first.kind, first.container.pid_ns) == (STOP, 4026531111)
    assert (second.kind, second.container.pid_ns) == (START, 4026532222)
    assert first.container.id == second.container.id
    run.halt()


def test_exited_container_processes_are_skipped(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    pod = make_pod("half")
    cri.add(pod, "alive")
    cri.add(pod, "dead", pid=child.pid)
    api.create_pod(pod)
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"half/alive"})
    time.sleep(0.3)  # resyncs keep skipping it quietly
    assert run.rec.names(START) == ["half/alive"]
    assert run.error is None
    run.halt()


def test_pods_without_kubelet_labels_produce_nothing(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    lonely = make_pod("lonely")
    cri.add(lonely, "unlabelled", kubelet_labels=False)  # e.g. started with ctr/nerdctl
    cri.add(None, "plain", labels={"app": "lonely"})
    api.create_pod(lonely)
    other = make_pod("other")
    cri.add(other, "wrong-uid", labels={"io.kubernetes.pod.uid": "not-" + other["metadata"]["uid"]})
    api.create_pod(other)
    obs = make_observer()
    run = Running(obs)
    assert wait_until(lambda: obs.stats().get("lists", 0) == 1)
    time.sleep(0.4)  # a couple of resyncs too
    assert run.rec.events == []
    assert obs.containers() == []
    run.halt()


def test_containers_without_run_lists_once(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "p", labels={"app": "x"})
    running_pod(api, cri, "q", labels={"app": "y"})
    obs = make_observer()
    view = obs.copy(label_selector="app=y")
    assert [c.pod for c in view.containers()] == ["q"]
    assert len(api.list_requests) == 1
    assert api.watch_requests == []
    api.stop()
    with pytest.raises(KubernetesError, match="cannot list pods at http://127"):
        view.containers()


def test_emit_errors_do_not_end_run(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "boom")
    obs = make_observer()
    seen: list[ContainerEvent] = []

    def emit(ev: ContainerEvent) -> None:
        seen.append(ev)
        raise RuntimeError("subscriber bug")

    stop = threading.Event()
    t = threading.Thread(target=obs.run, args=(emit, stop), daemon=True)
    t.start()
    assert wait_until(lambda: len(seen) == 1)
    running_pod(api, cri, "boom-2")
    assert wait_until(lambda: len(seen) == 2)
    stop.set()
    t.join(2)
    assert not t.is_alive()


def test_close_ends_every_view(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "p")
    obs = make_observer()
    runs = [Running(obs.copy()), Running(obs.copy(namespace="default"))]
    for run in runs:
        assert run.rec.wait_for(lambda r: r.active() == {"p/main"})
    t0 = time.monotonic()
    obs.close()
    for run in runs:
        run.thread.join(2)
        assert not run.thread.is_alive()
    assert time.monotonic() - t0 < 2.0
    assert api.wait_for_watches(0)
    assert cri.closed == 0  # a CRI client passed in belongs to the caller


def test_on_synced_once_after_the_initial_state(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a", labels={"app": "web"})
    running_pod(api, cri, "b", labels={"app": "db"})
    obs = make_observer()
    first = Running(obs)
    assert first.rec.wait_synced() == 2  # both STARTs, then on_synced
    assert first.rec.active() == {"a/main", "b/main"}
    # a view that starts while the watch is live gets its state from the cache
    web = Running(obs.copy(label_selector="app=web"))
    assert web.rec.wait_synced() == 1
    assert web.rec.names(START) == ["a/main"]
    # a view that selects nothing is synced too, with no events
    nothing = Running(obs.copy(namespace="nowhere"))
    assert nothing.rec.wait_synced() == 0
    running_pod(api, cri, "c", labels={"app": "web"})
    assert web.rec.wait_for(shows({"a/main", "c/main"}))
    # a relist (410) is not a new initial state
    api.stop()
    api.delete_pod("default", "b")
    api.expire_history()
    api.start()
    assert first.rec.wait_for(shows({"a/main", "c/main"}))
    assert obs.stats()["relists_gone"] >= 1
    time.sleep(0.2)
    for run in (first, web, nothing):
        assert run.rec.synced_calls == 1
        run.halt()
    assert len(api.list_requests) >= 2
