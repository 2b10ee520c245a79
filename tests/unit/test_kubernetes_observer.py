"""KubernetesObserver against a local API server (tests/k8s_apiserver.py) and a fake CRI.

The real ``kubernetes`` client talks HTTP to the local server; the CRI is a fake whose
container pids are real processes (this test process), so pid namespace inodes are read
from /proc for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8s_apiserver import FakeApiServer, make_pod
from syshub.errors import CriError, KubernetesError
from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.topology.base import (
    Container,
    ContainerEvent,
    ContainerEventKind,
    Observer,
)
from syshub.topology.kubernetes import KubernetesObserver

START = ContainerEventKind.START
STOP = ContainerEventKind.STOP
MY_PID = os.getpid()
MY_PID_NS = os.stat(f"/proc/{MY_PID}/ns/pid").st_ino


# --------------------------------------------------------------------------- fake CRI


@dataclass(frozen=True)
class FakeCriContainer:
    id: str
    pod_sandbox_id: str
    name: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    state: int = 1


@dataclass(frozen=True)
class FakeCriStatus:
    id: str
    pid: int


class FakeCri:
    """Same method names as CriClient; containers are registered per pod uid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._containers: dict[str, tuple[FakeCriContainer, int]] = {}
        self.connects = 0
        self.closed = 0
        self.list_calls: list[Mapping[str, str] | None] = []
        self.status_calls: list[str] = []

    def add(
        self,
        pod: Mapping[str, Any] | None,
        name: str = "main",
        *,
        pid: int = MY_PID,
        cid: str | None = None,
        labels: Mapping[str, str] | None = None,
        kubelet_labels: bool = True,
    ) -> str:
        cid = cid or uuid.uuid4().hex * 2
        all_labels: dict[str, str] = {}
        if kubelet_labels and pod is not None:
            meta = pod["metadata"]
            all_labels.update(
                {
                    "io.kubernetes.pod.name": meta["name"],
                    "io.kubernetes.pod.namespace": meta["namespace"],
                    "io.kubernetes.pod.uid": meta["uid"],
                    "io.kubernetes.container.name": name,
                }
            )
        all_labels.update(labels or {})
        sandbox = "sb-" + (pod["metadata"]["uid"] if pod is not None else "none")
        with self._lock:
            self._containers[cid] = (
                FakeCriContainer(cid, sandbox, name, "docker.io/library/busybox:1", all_labels),
                pid,
            )
        return cid

    def remove(self, cid: str) -> None:
        with self._lock:
            del self._containers[cid]

    def forget_pod(self, uid: str) -> None:
        with self._lock:
            for cid in [
                c
                for c, (ctr, _) in self._containers.items()
                if ctr.labels.get("io.kubernetes.pod.uid") == uid
            ]:
                del self._containers[cid]

    def connect(self) -> None:
        self.connects += 1

    def close(self) -> None:
        self.closed += 1

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[FakeCriContainer]:
        with self._lock:
            self.list_calls.append(dict(label_selector) if label_selector else None)
            return [
                c
                for c, _ in self._containers.values()
                if all(c.labels.get(k) == v for k, v in (label_selector or {}).items())
            ]

    def container_status(self, container_id: str) -> FakeCriStatus:
        with self._lock:
            self.status_calls.append(container_id)
            if container_id not in self._containers:
                raise CriError(f"container {container_id} not found")
            return FakeCriStatus(container_id, self._containers[container_id][1])


# --------------------------------------------------------------------------- helpers


class Recorder:
    def __init__(self) -> None:
        self.events: list[ContainerEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: ContainerEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Recorder], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def of(self, kind: ContainerEventKind) -> list[Container]:
        with self._cond:
            return [e.container for e in self.events if e.kind is kind]

    def names(self, kind: ContainerEventKind) -> list[str]:
        return [f"{c.pod}/{c.name}" for c in self.of(kind)]

    def active(self) -> set[str]:
        """pod/container of containers started and not stopped since."""
        live: dict[str, str] = {}
        with self._cond:
            for e in self.events:
                if e.kind is START:
                    live[e.container.id] = f"{e.container.pod}/{e.container.name}"
                else:
                    live.pop(e.container.id, None)
        return set(live.values())

    def count(self) -> int:
        with self._cond:
            return len(self.events)


class Running:
    """``observer.run`` in a thread."""

    def __init__(self, observer: Observer) -> None:
        self.rec = Recorder()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(observer,), daemon=True)
        self.thread.start()

    def _run(self, observer: Observer) -> None:
        try:
            observer.run(self.rec, self.stop)
        except BaseException as exc:  # pragma: no cover - reported by the tests
            self.error = exc

    def halt(self, timeout: float = 3.0) -> float:
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run() did not return after stop"
        assert self.error is None, self.error
        return time.monotonic() - t0


def shows(want: set[str]) -> Callable[[Recorder], bool]:
    """Predicate: the recorder's active containers are exactly ``want``."""
    return lambda r: r.active() == want


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def running_pod(api: FakeApiServer, cri: FakeCri, name: str, **kw: Any) -> dict[str, Any]:
    """Create a Running pod with one container ("main") known to the CRI."""
    containers = kw.pop("containers", ["main"])
    pod = make_pod(name, **kw, containers={c: "" for c in containers})
    ids = {c: cri.add(pod, c) for c in containers}
    for status in pod["status"]["containerStatuses"]:
        status["containerID"] = f"containerd://{ids[status['name']]}"
    return api.create_pod(pod)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _no_node_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("SYSHUB_NODE_NAME", raising=False)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.close()


@pytest.fixture
def cri() -> FakeCri:
    return FakeCri()


@pytest.fixture
def make_observer(api: FakeApiServer, cri: FakeCri) -> Iterator[Callable[..., KubernetesObserver]]:
    made: list[KubernetesObserver] = []

    def make(**kw: Any) -> KubernetesObserver:
        endpoint = kw.pop("k8s_endpoint", api.url)
        opts: dict[str, Any] = {
            "cri": cri,
            "resync_interval": 0.2,
            "backoff_initial": 0.05,
            "backoff_max": 0.3,
            "poll_interval": 0.02,
            "request_timeout": 3.0,
        }
        opts.update(kw)
        obs = KubernetesObserver(endpoint, **opts)
        made.append(obs)
        return obs

    yield make
    for obs in made:
        obs.close()
    # no watch or resync thread outlives its observer
    assert wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("syshub-k8s")]
    )


# --------------------------------------------------------------------------- tests


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


def test_bookmark_advances_resource_version(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "mine", namespace="team-a")
    obs = make_observer(namespace="team-a")
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"mine/main"})
    assert api.wait_for_watches(1)
    listed_rv = obs.resource_version
    assert listed_rv == str(api.resource_version)
    # changes elsewhere move the global resourceVersion; this watch hears nothing of them
    for i in range(3):
        running_pod(api, cri, f"noise-{i}", namespace="team-b")
    time.sleep(0.1)
    assert obs.resource_version == listed_rv
    api.send_bookmark()
    assert wait_until(lambda: obs.resource_version == str(api.resource_version))
    assert obs.stats()["bookmarks"] == 1
    assert run.rec.count() == 1  # a bookmark is not a change
    # the next watch resumes from the bookmark, not from the LIST
    api.drop_watches()
    assert wait_until(lambda: len(api.watch_requests) == 2)
    assert api.watch_requests[0].params["resourceVersion"] == listed_rv
    assert api.watch_requests[1].params["resourceVersion"] == str(api.resource_version)
    assert api.watch_requests[0].params["allowWatchBookmarks"] == "true"
    assert api.watch_requests[0].path == "/api/v1/namespaces/team-a/pods"
    assert len(api.list_requests) == 1
    run.halt()


@pytest.mark.parametrize("gone_mode", ["event", "status"])
def test_gone_relists_and_diffs(
    api: FakeApiServer,
    cri: FakeCri,
    make_observer: Callable[..., KubernetesObserver],
    gone_mode: str,
) -> None:
    api.gone_mode = gone_mode  # type: ignore[assignment]
    running_pod(api, cri, "stays")
    running_pod(api, cri, "goes")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "goes/main"})
    # while the client is cut off, the world changes and the history is compacted
    api.stop()
    api.delete_pod("default", "goes")
    running_pod(api, cri, "new")
    api.expire_history()
    api.start()
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "new/main"})
    assert run.rec.names(STOP) == ["goes/main"]
    assert sorted(run.rec.names(START)) == ["goes/main", "new/main", "stays/main"]  # no dupes
    assert obs.stats()["relists_gone"] >= 1
    assert len(api.list_requests) == 2
    assert obs.resource_version == str(api.resource_version)
    # and the watch goes on from the relisted version
    running_pod(api, cri, "after")
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "new/main", "after/main"})
    run.halt()


def test_server_down_then_up_reconnects_with_backoff(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "before")
    obs = make_observer(backoff_initial=0.05, backoff_max=0.2)
    obs.connect()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"before/main"})
    api.stop()
    t0 = time.monotonic()
    assert wait_until(lambda: obs.stats().get("errors", 0) >= 3, timeout=5)
    time.sleep(0.6)
    errors = obs.stats()["errors"]
    elapsed = time.monotonic() - t0
    # backoff: bounded retry rate (at least ~0.1 s apart once capped), but still retrying
    assert errors <= elapsed / 0.1 + 4, (errors, elapsed)
    assert run.thread.is_alive() and run.error is None
    running_pod(api, cri, "during")  # happens while the client cannot see it
    api.start()
    assert run.rec.wait_for(lambda r: r.active() == {"before/main", "during/main"})
    # resumed from the last resourceVersion: no relist needed, no duplicate START
    assert len(api.list_requests) == 1
    assert run.rec.names(START) == ["before/main", "during/main"]
    assert run.halt() < 1.0


def test_connect_fails_when_api_unreachable(
    api: FakeApiServer, make_observer: Callable[..., KubernetesObserver]
) -> None:
    obs = make_observer()
    api.stop()
    with pytest.raises(KubernetesError, match="cannot reach the Kubernetes API at http://127"):
        obs.connect()


def test_watch_dropped_mid_stream_resumes_without_duplicate_starts(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"a/main"})
    running_pod(api, cri, "b")
    assert run.rec.wait_for(lambda r: r.active() == {"a/main", "b/main"})
    rv_seen = obs.resource_version
    assert api.drop_watches() == 1
    running_pod(api, cri, "c")
    assert run.rec.wait_for(lambda r: r.active() == {"a/main", "b/main", "c/main"})
    assert run.rec.names(START) == ["a/main", "b/main", "c/main"]
    assert run.rec.of(STOP) == []
    assert len(api.list_requests) == 1
    assert len(api.watch_requests) == 2
    assert api.watch_requests[1].params["resourceVersion"] == rv_seen
    run.halt()


def test_watch_error_events_are_retried_from_the_same_version(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(shows({"a/main"}))
    assert api.wait_for_watches(1)
    rv = obs.resource_version
    api.fail_next_watches(2, code=500)
    api.drop_watches()
    assert wait_until(lambda: obs.stats().get("errors", 0) >= 2)
    running_pod(api, cri, "b")
    assert run.rec.wait_for(shows({"a/main", "b/main"}))
    assert [r.params["resourceVersion"] for r in api.watch_requests[1:4]] == [rv, rv, rv]
    assert len(api.list_requests) == 1  # a 500 is not a 410: no relist
    assert run.rec.names(START) == ["a/main", "b/main"]
    run.halt()


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


# --------------------------------------------------------------------------- configuration


def _kubeconfig(server: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
contexts:
- name: local
  context:
    cluster: local
    user: nobody
current-context: local
users:
- name: nobody
  user: {{}}
"""


def test_kubeconfig_path_is_used(
    api: FakeApiServer,
    cri: FakeCri,
    tmp_path: Path,
    make_observer: Callable[..., KubernetesObserver],
) -> None:
    running_pod(api, cri, "viaconfig")
    path = tmp_path / "config"
    path.write_text(_kubeconfig(api.url))
    obs = make_observer(k8s_endpoint=str(path))
    obs.connect()
    assert [c.pod for c in obs.containers()] == ["viaconfig"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read kubeconfig"),
        ("dir", "cannot read kubeconfig"),
        ("{{{ not yaml", "invalid kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "invalid kubeconfig"),
        ("- just\n- a list\n", "invalid kubeconfig"),
    ],
)
def test_unusable_kubeconfig_raises_kubernetes_error(
    tmp_path: Path, cri: FakeCri, content: str | None, match: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    obs = KubernetesObserver(str(path), cri=cri)
    with pytest.raises(KubernetesError, match=match) as info:
        obs.connect()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    stop = threading.Event()
    stop.set()
    with pytest.raises(KubernetesError):  # run() fails fast on configuration errors too
        obs.run(lambda ev: None, stop)
    assert cri.connects == 0


def test_no_configuration_at_all(
    tmp_path: Path, cri: FakeCri, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesError, match="no Kubernetes configuration"):
        KubernetesObserver(cri=cri).connect()
