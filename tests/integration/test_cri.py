"""CRI client and CriObserver: unit tests with a fake runtime, then a real containerd.

Tests marked ``containerd`` use the session fixture from ``conftest.py``; each
works in its own Kubernetes namespace so tests do not see each other's pods.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from support.containerd import ContainerdEnv
from support.fake_cri import FakeCri, FakeGrpcRuntime
from support.observers import START, STOP, Running, event_for
from syshub.errors import CriError
from syshub.topology import Container, ContainerEvent, Observer
from syshub.topology.cri import CriObserver
from syshub.topology.cri.client import CriClient, parse_endpoint
from syshub.topology.cri.runtime.v1 import api_pb2 as pb
from syshub.topology.resolve import (
    ContainerState,
    CriCallError,
    CriContainerStatus,
    ProcessGoneError,
    pid_namespace_inode,
)

OWN_PID_NS = os.stat("/proc/self/ns/pid").st_ino


# ============================================================================ unit: observer


@pytest.fixture
def fake(tmp_path: Path) -> FakeCri:
    rt = FakeCri(tmp_path)
    rt.add_pod("p1", "web-0", "shop", labels={"app": "web", "tier": "front"})
    rt.add_pod("p2", "db-0", "shop", labels={"app": "db", "tier": "back"})
    rt.add_pod("p3", "web-0", "other", labels={"app": "web"})
    rt.add_container("c1", "p1", "nginx", labels={"role": "server"})
    rt.add_container("c2", "p1", "sidecar")
    rt.add_container("c3", "p2", "postgres")
    rt.add_container("c4", "p3", "nginx")
    return rt


def observer_for(fake: FakeCri, **kwargs: object) -> CriObserver:
    return CriObserver("unix:///fake.sock", alt_root=str(fake.alt_root), client=fake, **kwargs)  # type: ignore[arg-type]


def ids(containers: list[Container]) -> set[str]:
    return {c.id for c in containers}


class MatchAll:
    """A selector-like object with ``matches`` (like the project's LabelSelector)."""

    def __init__(self, key: str, values: set[str]) -> None:
        self.key, self.values = key, values

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) in self.values


def test_observer_implements_protocol(fake: FakeCri) -> None:
    assert isinstance(observer_for(fake), Observer)


def test_containers_carry_pod_identity(fake: FakeCri) -> None:
    obs = observer_for(fake)
    obs.connect()
    by_id = {c.id: c for c in obs.containers()}
    assert set(by_id) == {"c1", "c2", "c3", "c4"}
    c1 = by_id["c1"]
    assert (c1.name, c1.pod, c1.namespace, c1.pod_uid, c1.sandbox_id) == (
        "nginx",
        "web-0",
        "shop",
        "uid-p1",
        "p1",
    )
    assert c1.pid == fake.pids["c1"]
    assert c1.pid_ns == os.stat(fake.alt_root / "proc" / str(c1.pid) / "ns" / "pid").st_ino
    assert c1.labels["role"] == "server"
    assert c1.pod_labels["tier"] == "front"
    assert c1.image == "docker.io/library/busybox:latest"
    assert c1.host == "nginx.web-0"


def test_namespace_filter(fake: FakeCri) -> None:
    assert ids(observer_for(fake, namespace="shop").containers()) == {"c1", "c2", "c3"}
    assert ids(observer_for(fake, namespace="other").containers()) == {"c4"}
    assert observer_for(fake, namespace="nope").containers() == []


def test_dict_label_selector_uses_pod_and_container_labels(fake: FakeCri) -> None:
    obs = observer_for(fake)
    assert ids(obs.copy(label_selector={"app": "web"}).containers()) == {"c1", "c2", "c4"}
    assert ids(obs.copy(label_selector={"tier": "back"}).containers()) == {"c3"}
    # a container label and a pod label together
    assert ids(obs.copy(label_selector={"role": "server", "tier": "front"}).containers()) == {"c1"}
    assert obs.copy(label_selector={"app": "web", "tier": "back"}).containers() == []
    # kubelet's own labels are selectable too
    sel = {"io.kubernetes.container.name": "nginx"}
    assert ids(obs.copy(label_selector=sel).containers()) == {"c1", "c4"}


def test_object_label_selector(fake: FakeCri) -> None:
    obs = observer_for(fake, label_selector=MatchAll("app", {"db", "cache"}))
    assert ids(obs.containers()) == {"c3"}


def test_project_label_selector_if_available(fake: FakeCri) -> None:
    selectors = pytest.importorskip("syshub.spec.selectors")
    sel = selectors.LabelSelector.parse("app in (web),tier!=back")
    assert ids(observer_for(fake, label_selector=sel).containers()) == {"c1", "c2", "c4"}


def test_copies_narrow_and_share_the_client(fake: FakeCri) -> None:
    obs = observer_for(fake, namespace="shop")
    web = obs.copy(label_selector={"app": "web"})
    assert web.client is obs.client
    assert ids(web.containers()) == {"c1", "c2"}  # namespace=shop AND app=web
    narrower = web.copy(label_selector={"io.kubernetes.container.name": "sidecar"})
    assert ids(narrower.containers()) == {"c2"}
    # a copy asking for another namespace sees the intersection: nothing
    assert obs.copy(namespace="other").containers() == []


def test_field_selector(fake: FakeCri) -> None:
    obs = observer_for(fake)
    assert ids(obs.copy(field_selector={"metadata.name": "web-0"}).containers()) == {
        "c1",
        "c2",
        "c4",
    }
    both = obs.copy(field_selector={"metadata.name": "web-0", "metadata.namespace": "other"})
    assert ids(both.containers()) == {"c4"}


def test_bad_selector_type_rejected(fake: FakeCri) -> None:
    with pytest.raises(TypeError, match="label_selector"):
        observer_for(fake, label_selector=42)
    with pytest.raises(TypeError, match="field_selector"):
        observer_for(fake).copy(field_selector=object())
    # selector strings are parsed
    assert ids(observer_for(fake).copy(field_selector="metadata.name=db-0").containers()) == {"c3"}


def test_exited_process_is_skipped(fake: FakeCri) -> None:
    fake.add_container("dead", "p1", "oneshot", process_alive=False)
    assert "dead" not in ids(observer_for(fake).containers())


def test_container_gone_between_list_and_status(fake: FakeCri) -> None:
    real_status = fake.container_status

    def vanishing(cid: str) -> CriContainerStatus:
        if cid == "c2":
            raise CriCallError("gone", code="NOT_FOUND")
        return real_status(cid)

    fake.container_status = vanishing  # type: ignore[method-assign,assignment]
    assert ids(observer_for(fake).containers()) == {"c1", "c3", "c4"}


def test_close_closes_only_an_owned_client(fake: FakeCri) -> None:
    obs = observer_for(fake)
    obs.copy(namespace="shop").close()
    obs.close()
    assert not fake.closed  # the caller passed the client in: the caller closes it


def test_closing_the_original_stops_copies(fake: FakeCri) -> None:
    obs = observer_for(fake, poll_interval=0.05)
    copy = obs.copy(namespace="shop")
    stop = threading.Event()  # never set: close() alone must end run()
    t = threading.Thread(target=copy.run, args=(lambda ev: None, stop), daemon=True)
    t.start()
    time.sleep(0.1)
    obs.close()
    t.join(5)
    assert not t.is_alive()


def test_run_emits_start_stop_and_restart(fake: FakeCri) -> None:
    obs = observer_for(fake, namespace="shop", poll_interval=0.02)
    with Running(obs) as rec:
        for cid in ("c1", "c2", "c3"):
            rec.wait_event(event_for(START, cid))
        # the runtime forgets c3 entirely: STOP still carries the remembered value
        fake.remove("c3")
        stopped = rec.wait_event(event_for(STOP, "c3"))
        assert (stopped.container.pod, stopped.container.name) == ("db-0", "postgres")
        # restart of c1 = new id in the same pod, in one poll
        fake.remove("c1")
        fake.add_container("c1b", "p1", "nginx")
        rec.wait_event(event_for(START, "c1b"))
        kinds = [(e.kind, e.container.id) for e in rec.events]
        assert kinds.index((STOP, "c1")) < kinds.index((START, "c1b"))
        # other namespace never shows up
        fake.add_container("c5", "p3", "late")
        rec.drain(0.1)
    assert all(e.container.namespace == "shop" for e in rec.events)
    starts = [e.container.id for e in rec.events if e.kind is START]
    assert len(starts) == len(set(starts)), "a container was started twice"


def test_run_survives_transient_errors(fake: FakeCri, caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next = 2
    obs = observer_for(fake, poll_interval=0.01)
    with caplog.at_level(logging.WARNING, logger="syshub.topology.cri"), Running(obs) as rec:
        rec.wait_event(event_for(START, "c4"), timeout=10)
        fake.fail_next = 1
        fake.remove("c4")
        rec.wait_event(event_for(STOP, "c4"), timeout=10)
    assert "UNAVAILABLE" in caplog.text
    assert [e.kind for e in rec.events].count(STOP) == 1


def test_run_survives_a_failing_emit(fake: FakeCri) -> None:
    seen: list[str] = []

    def emit(ev: ContainerEvent) -> None:
        seen.append(ev.container.id)
        raise RuntimeError("subscriber bug")

    stop = threading.Event()
    obs = observer_for(fake, poll_interval=0.01)
    t = threading.Thread(target=obs.run, args=(emit, stop), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while len(seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    obs.close()  # close() alone ends run()
    t.join(5)
    assert not t.is_alive()
    assert sorted(seen) == ["c1", "c2", "c3", "c4"]


def test_on_synced_follows_the_initial_starts_once(fake: FakeCri) -> None:
    fake.fail_next = 2  # the first polls fail: on_synced waits for the first good one
    obs = observer_for(fake, namespace="shop", poll_interval=0.02)
    with Running(obs.copy(label_selector={"app": "web"})) as web, Running(obs) as rec:
        assert rec.wait_synced() == 3
        assert {(e.kind, e.container.id) for e in rec.events[:3]} == {
            (START, "c1"),
            (START, "c2"),
            (START, "c3"),
        }
        assert web.wait_synced() == 2
        fake.add_container("c9", "p1", "late")
        rec.wait_event(event_for(START, "c9"))
        web.wait_event(event_for(START, "c9"))
        rec.drain(0.1)
        assert (rec.synced_calls, web.synced_calls) == (1, 1)


def test_copies_share_one_poll(fake: FakeCri) -> None:
    obs = observer_for(fake, poll_interval=0.2)
    copies = [obs.copy(namespace="shop"), obs.copy(namespace="other"), obs]
    runs = [Running(c) for c in copies]
    time.sleep(1.0)
    for r in runs:
        r.halt()
    # three loops polling every 0.2 s for 1 s without sharing would list ~15 times
    assert len(fake.list_calls) <= 10, fake.list_calls


# ============================================================================ unit: client


def test_parse_endpoint() -> None:
    assert parse_endpoint("unix:///run/containerd/containerd.sock") == (
        "/run/containerd/containerd.sock"
    )
    assert parse_endpoint("/run/crio/crio.sock") == "/run/crio/crio.sock"
    assert parse_endpoint("unix:/run/crio/crio.sock") == "/run/crio/crio.sock"
    with pytest.raises(CriError, match="only unix://"):
        parse_endpoint("tcp://127.0.0.1:1234")
    with pytest.raises(CriError, match="empty"):
        parse_endpoint("unix://")


def test_missing_socket(tmp_path: Path) -> None:
    path = tmp_path / "nope.sock"
    with pytest.raises(CriError, match="no such socket") as info:
        CriClient(f"unix://{path}").connect()
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_regular_file_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "file.sock"
    path.write_text("")
    with pytest.raises(CriError, match="is not a socket"):
        CriClient(str(path)).connect()


def test_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens
    with pytest.raises(CriError, match="nothing is listening"):
        CriClient(str(path)).connect()


def test_socket_that_does_not_speak_grpc(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    try:
        t0 = time.monotonic()
        with pytest.raises(CriError, match=r"no CRI runtime answers|failed"):
            CriClient(str(path), timeout=0.5).connect()
        assert time.monotonic() - t0 < 5
    finally:
        server.close()


def test_falls_back_to_v1alpha2(tmp_path: Path) -> None:
    with FakeGrpcRuntime(tmp_path / "alpha.sock") as fake_rt:
        client = CriClient(f"unix://{fake_rt.path}", timeout=5)
        try:
            client.connect()
            assert client.api_version == "runtime.v1alpha2"
            assert client.version()["runtime_name"] == "fake"
            [c] = client.list_containers(label_selector={"k": "v"})
            assert (c.id, c.pod_sandbox_id, c.name, c.attempt, c.image) == (
                "abc",
                "pod1",
                "app",
                2,
                "img:1",
            )
            assert (c.state, c.created_at) == (ContainerState.RUNNING, 123)
            assert dict(c.labels) == {"k": "v"}
            # the request carried the running-state filter and the label selector
            sent = fake_rt.requests[-1][1].filter
            assert sent.HasField("state") and sent.state.state == ContainerState.RUNNING
            assert dict(sent.label_selector) == {"k": "v"}
            with pytest.raises(CriCallError, match="ContainerStatus failed: NOT_FOUND") as info:
                client.container_status("x")
            assert info.value.code == "NOT_FOUND"
            assert "\n" not in str(info.value)
            assert str(fake_rt.path) in str(info.value)
        finally:
            client.close()


def test_pid_namespace_inode_of_self_and_of_a_gone_process(tmp_path: Path) -> None:
    assert pid_namespace_inode(os.getpid()) == OWN_PID_NS
    with pytest.raises(ProcessGoneError, match="gone") as info:
        pid_namespace_inode(os.getpid(), alt_root=str(tmp_path))
    assert isinstance(info.value, ProcessLookupError)
    assert isinstance(info.value, CriError)
    with pytest.raises(ProcessLookupError):
        pid_namespace_inode(0)


def test_fixture_skips_or_fails_without_containerd(tmp_path: Path) -> None:
    """Without the binaries the fixture skips, unless SYSHUB_REQUIRE_CONTAINERD=1."""
    test_id = f"{Path(__file__).name}::test_version_is_v1"
    base_env = {
        **os.environ,
        "PATH": str(tmp_path),  # no containerd, runc or ctr
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # third-party plugins only slow the start
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test_id]

    def run(require: str) -> subprocess.CompletedProcess[str]:
        env = {**base_env, "SYSHUB_REQUIRE_CONTAINERD": require}
        return subprocess.run(
            cmd, cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=120
        )

    skipped = run("0")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout
    assert "missing containerd, runc, ctr" in skipped.stdout
    failed = run("1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "SYSHUB_REQUIRE_CONTAINERD=1 but containerd cannot run" in failed.stdout


# ============================================================================ real containerd


@pytest.fixture
def k8s_namespace() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def pod(
    env: ContainerdEnv, name: str, namespace: str, labels: Mapping[str, str] | None = None
) -> Iterator[str]:
    pod_id = env.run_pod(name, namespace, labels=labels)
    try:
        yield pod_id
    finally:
        env.remove_pod(pod_id)


@pytest.mark.containerd
def test_version_is_v1(containerd: ContainerdEnv) -> None:
    with CriClient(containerd.endpoint) as client:
        version = client.version()
    assert version["api"] == "runtime.v1"
    assert version["runtime_name"] == "containerd"
    assert version["runtime_api_version"] == "v1"


@pytest.mark.containerd
def test_sleep_container_status_and_pid_namespace(
    containerd: ContainerdEnv, k8s_namespace: str
) -> None:
    client = containerd.client
    t0 = time.monotonic()
    with pod(containerd, "web-0", k8s_namespace, labels={"app": "web"}) as pod_id:
        cid = containerd.run_container(
            pod_id, "sleeper", ["sleep", "3600"], labels={"role": "test"}
        )
        elapsed = time.monotonic() - t0
        containerd.timings.setdefault("pod_and_container_to_running", elapsed)

        listed = {c.id: c for c in client.list_containers(label_selector={"role": "test"})}
        assert cid in listed
        entry = listed[cid]
        assert entry.state is ContainerState.RUNNING
        assert entry.pod_sandbox_id == pod_id
        assert entry.name == "sleeper"
        assert entry.labels["io.kubernetes.pod.namespace"] == k8s_namespace
        assert entry.labels["role"] == "test"
        assert entry.created_at > 0

        status = client.container_status(cid)
        assert status.state is ContainerState.RUNNING
        assert status.pid > 0
        assert status.started_at >= status.created_at > 0
        assert status.pod_sandbox_id == pod_id
        ns = os.stat(f"/proc/{status.pid}/ns/pid").st_ino
        assert ns != OWN_PID_NS
        assert pid_namespace_inode(status.pid) == ns

        sandbox_status = containerd.lifecycle.sandbox_status(pod_id).status
        meta = sandbox_status.metadata
        assert (meta.name, meta.namespace) == ("web-0", k8s_namespace)
        assert sandbox_status.state == pb.SANDBOX_READY
        assert sandbox_status.labels["app"] == "web"
        options = sandbox_status.linux.namespaces.options
        assert (options.pid, options.network) == (pb.CONTAINER, pb.NODE)
        assert any(p.id == pod_id for p in client.list_pod_sandboxes(ready_only=True))
    assert cid not in {c.id for c in client.list_containers(state_running_only=False)}


@pytest.mark.containerd
def test_observer_start_and_stop(containerd: ContainerdEnv, k8s_namespace: str) -> None:
    obs = CriObserver(containerd.endpoint, namespace=k8s_namespace, poll_interval=0.1)
    obs.connect()
    try:
        with Running(obs) as rec:
            pod_id = containerd.run_pod("api-0", k8s_namespace, labels={"app": "api"})
            pod_uid = containerd.pod_config(pod_id).uid
            cid = containerd.run_container(pod_id, "server", ["sleep", "3600"])
            started = rec.wait_event(event_for(START, cid)).container
            assert (started.pod, started.namespace, started.pod_uid) == (
                "api-0",
                k8s_namespace,
                pod_uid,
            )
            assert started.name == "server"
            assert started.sandbox_id == pod_id
            assert started.pod_labels["app"] == "api"
            assert started.pid_ns == pid_namespace_inode(started.pid) != OWN_PID_NS
            assert [c.id for c in obs.containers()] == [cid]
            containerd.remove_pod(pod_id)
            stopped = rec.wait_event(event_for(STOP, cid)).container
            assert stopped == started
    finally:
        obs.close()


@pytest.mark.containerd
def test_observer_on_synced_after_existing_containers(
    containerd: ContainerdEnv, k8s_namespace: str
) -> None:
    obs = CriObserver(containerd.endpoint, namespace=k8s_namespace, poll_interval=0.1)
    try:
        with pod(containerd, "pre-0", k8s_namespace, labels={"app": "pre"}) as pod_id:
            first = containerd.run_container(pod_id, "one", ["sleep", "3600"])
            second = containerd.run_container(pod_id, "two", ["sleep", "3600"])
            view = obs.copy(label_selector={"io.kubernetes.container.name": "two"})
            with Running(obs) as rec, Running(view) as two:
                assert rec.wait_synced() == 2
                assert {e.container.id for e in rec.events[:2]} == {first, second}
                assert all(e.kind is START for e in rec.events[:2])
                assert two.wait_synced() == 1
                assert two.events[0].container.id == second
                later = containerd.run_container(pod_id, "three", ["sleep", "3600"])
                rec.wait_event(event_for(START, later))
                assert rec.synced_calls == 1
    finally:
        obs.close()


@pytest.mark.containerd
def test_container_that_exits_at_once(
    containerd: ContainerdEnv, k8s_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    obs = CriObserver(containerd.endpoint, namespace=k8s_namespace, poll_interval=0.05)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="syshub.topology"),
            pod(containerd, "job-0", k8s_namespace) as pod_id,
            Running(obs) as rec,
        ):
            cid = containerd.run_container(pod_id, "oneshot", ["true"])
            deadline = time.monotonic() + 10
            while containerd.client.container_status(cid).state is not ContainerState.EXITED:
                assert time.monotonic() < deadline, "container running `true` did not exit"
                time.sleep(0.02)
            assert containerd.client.container_status(cid).exit_code == 0
            assert cid not in ids(obs.containers())
            events = rec.drain(0.3)
        # it may have been seen alive for an instant; if so it must also have stopped
        kinds = [e.kind for e in events if e.container.id == cid]
        assert kinds in ([], [START, STOP])
        complaints = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("syshub.topology") and r.levelno >= logging.WARNING
        ]
        assert complaints == []
    finally:
        obs.close()


@pytest.mark.containerd
def test_label_selector_copy_sees_only_matching(
    containerd: ContainerdEnv, k8s_namespace: str
) -> None:
    obs = CriObserver(containerd.endpoint, namespace=k8s_namespace, poll_interval=0.1)
    db_only = obs.copy(label_selector={"tier": "db"})
    try:
        with (
            pod(containerd, "db-0", k8s_namespace, labels={"tier": "db"}) as db_pod,
            pod(containerd, "web-0", k8s_namespace, labels={"tier": "web"}) as web_pod,
        ):
            db = containerd.run_container(db_pod, "db", ["sleep", "3600"])
            web = containerd.run_container(web_pod, "web", ["sleep", "3600"])
            with Running(db_only) as rec:
                rec.wait_event(event_for(START, db))
                rec.drain(0.3)
            assert ids(obs.containers()) == {db, web}
            assert ids(db_only.containers()) == {db}
            assert {e.container.id for e in rec.events} == {db}
            by_container_label = obs.copy(label_selector={"io.kubernetes.container.name": "web"})
            assert ids(by_container_label.containers()) == {web}
    finally:
        obs.close()


@pytest.mark.containerd
def test_restarted_container_is_stop_then_start(
    containerd: ContainerdEnv, k8s_namespace: str
) -> None:
    obs = CriObserver(containerd.endpoint, namespace=k8s_namespace, poll_interval=0.1)
    try:
        with pod(containerd, "app-0", k8s_namespace) as pod_id, Running(obs) as rec:
            old = containerd.run_container(pod_id, "app", ["sleep", "3600"])
            first = rec.wait_event(event_for(START, old)).container
            containerd.remove_container(old)
            new = containerd.run_container(pod_id, "app", ["sleep", "3600"], attempt=1)
            second = rec.wait_event(event_for(START, new)).container
            order = [(e.kind, e.container.id) for e in rec.events]
            assert order.index((STOP, old)) < order.index((START, new))
            assert (first.name, first.pod) == (second.name, second.pod) == ("app", "app-0")
            assert first.pid_ns != second.pid_ns or first.pid != second.pid
    finally:
        obs.close()
