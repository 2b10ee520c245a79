"""The topology without a runtime: the one container filter, LocalObserver and
HostObserver (on a made-up ``/proc``) with ``on_synced``, the cache, and the one-line
error when the ``cri`` extra is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.observers import START, STOP, Running, event_for
from syshub.spec.selectors import LabelSelector
from syshub.topology import (
    Container,
    ContainerEvent,
    HostObserver,
    LocalObserver,
    Observer,
    Topology,
)
from syshub.topology.filter import ContainerFilter, as_label_selector, selects_host
from syshub.topology.resolve import (
    ContainerState,
    CriCallError,
    CriContainer,
    CriContainerStatus,
    PodRef,
    Resolver,
)


def ctr(
    cid: str, ns: int, *, namespace: str = "", labels: dict[str, str] | None = None
) -> Container:
    return Container(
        id=cid,
        name=f"n-{cid}",
        pid=100 + ns,
        pid_ns=ns,
        pod=f"p-{cid}",
        namespace=namespace,
        labels=labels or {},
        pod_labels={"tier": "web"},
    )


# --------------------------------------------------------------------------- filter


def test_filter_narrows_and_admits_namespace_less_containers() -> None:
    flt = ContainerFilter().narrow("shop", {"app": "a"})
    assert flt.matches(ctr("1", 1, namespace="shop", labels={"app": "a"}))
    assert not flt.matches(ctr("2", 2, namespace="other", labels={"app": "a"}))
    assert flt.matches(ctr("3", 3, labels={"app": "a"}))  # a local process: any namespace
    assert not flt.matches(ctr("4", 4, namespace="shop", labels={"app": "b"}))
    # narrowing is AND: a second namespace leaves nothing with a namespace
    both = flt.narrow("other")
    assert not both.matches(ctr("5", 5, namespace="shop", labels={"app": "a"}))
    # pod labels are seen under the container's
    assert flt.narrow(label_selector="tier=web").matches(ctr("6", 6, labels={"app": "a"}))
    assert not flt.narrow(label_selector="tier=db").matches(ctr("7", 7, labels={"app": "a"}))


def test_filter_selector_forms_and_fields() -> None:
    c = ctr("1", 1, namespace="shop", labels={"app": "a", "v": "2"})
    for selector in (
        "app in (a,b),v!=1",
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]},
        {"app": "a"},
        LabelSelector.parse("app=a"),
    ):
        assert ContainerFilter().narrow(label_selector=selector).matches(c), selector
    assert ContainerFilter().narrow(field_selector="metadata.name=p-1").matches(c)
    assert ContainerFilter().narrow(field_selector={"metadata.namespace": "shop"}).matches(c)
    assert not ContainerFilter().narrow(field_selector="status.phase!=Running").matches(c)
    # empty selectors constrain nothing
    assert as_label_selector({}) is None and as_label_selector("") is None
    with pytest.raises(TypeError, match="label_selector"):
        as_label_selector(42)


def test_host_selector() -> None:
    c = ctr("1", 1)
    assert selects_host((), c) and selects_host(["n-1", "x"], c)
    assert not selects_host(["x"], c)
    assert not ContainerFilter().narrow(hosts=["x"]).matches(c)


def _status(state: ContainerState, pid: int) -> CriContainerStatus:
    return CriContainerStatus(
        id="c", name="app", attempt=0, state=state, created_at=1, started_at=2,
        finished_at=0, exit_code=0, image="img:2", image_ref="", reason="", message="",
        log_path="", pid=pid,
    )  # fmt: skip


def test_resolver_outcomes() -> None:
    c = CriContainer("c", "sb", "app", 0, "img:1", "", ContainerState.RUNNING, 1, {"k": "v"})
    pod = PodRef("web-0", "shop", "uid-1", {"tier": "web"}, "node-a")
    me = os.getpid()
    replies: dict[str, CriContainerStatus | CriCallError] = {}

    def status(cid: str) -> CriContainerStatus:
        reply = replies[cid]
        if isinstance(reply, CriCallError):
            raise reply
        return reply

    resolver = Resolver(status)
    replies["c"] = _status(ContainerState.RUNNING, me)
    got = resolver.resolve(c, pod)
    assert got is not None
    assert (got.pid, got.pid_ns) == (me, os.stat("/proc/self/ns/pid").st_ino)
    assert (got.pod, got.namespace, got.pod_uid, got.node) == ("web-0", "shop", "uid-1", "node-a")
    assert (got.image, dict(got.labels), dict(got.pod_labels)) == (
        "img:2",
        {"k": "v"},
        {"tier": "web"},
    )
    assert resolver.alive(got)
    replies["c"] = _status(ContainerState.EXITED, me)
    assert resolver.resolve(c, pod) is None
    replies["c"] = _status(ContainerState.RUNNING, 0)  # no pid reported
    assert resolver.resolve(c, pod) is None
    replies["c"] = CriCallError("gone", code="NOT_FOUND")
    assert resolver.resolve(c, pod) is None
    replies["c"] = CriCallError("down", code="UNAVAILABLE")  # transient: the caller retries
    with pytest.raises(CriCallError, match="down"):
        resolver.resolve(c, pod)
    gone = Resolver(status, alt_root="/nonexistent")
    replies["c"] = _status(ContainerState.RUNNING, me)
    assert gone.resolve(c, pod) is None  # its process is not under alt_root
    assert not gone.alive(got)


def test_pod_ref_from_kubelet_labels() -> None:
    ref = PodRef.from_cri({"io.kubernetes.pod.name": "web-0"}, None, node="n1")
    assert (ref.name, ref.namespace, ref.node) == ("web-0", "", "n1")


def test_topology_keeps_containers_sharing_a_namespace() -> None:
    topo = Topology()
    a, b = ctr("a", 7), ctr("b", 7)
    for c in (a, b):
        topo.apply(ContainerEvent(START, c))
    topo.apply(ContainerEvent(STOP, a))
    assert topo.lookup_container(7) == b and topo.containers_in(7) == [b]
    topo.apply(ContainerEvent(STOP, b))
    assert topo.lookup_container(7) is None and topo.all() == []


# --------------------------------------------------------------------------- LocalObserver


def test_local_observer_on_synced_after_initial_starts() -> None:
    obs = LocalObserver()
    assert isinstance(obs, Observer)
    obs.start_container(ctr("a", 1, labels={"app": "x"}))
    obs.start_container(ctr("b", 2, labels={"app": "y"}))
    with Running(obs) as rec, Running(obs.copy(label_selector="app=y")) as ys:
        assert rec.wait_synced() == 2
        assert [e.kind for e in rec.events] == [START, START]
        assert ys.wait_synced() == 1 and ys.events[0].container.id == "b"
        obs.start_container(ctr("c", 3, labels={"app": "y"}))
        rec.wait_event(event_for(START, "c"))
        ys.wait_event(event_for(START, "c"))
        assert (rec.synced_calls, ys.synced_calls) == (1, 1)
    with Running(LocalObserver()) as empty:
        assert empty.wait_synced() == 0


# --------------------------------------------------------------------------- HostObserver


def _fake_proc(root: Path, pid: int, comm: str, ns: str) -> None:
    """``<root>/proc/<pid>`` whose ``ns/pid`` is (a hard link to) namespace file ``ns``."""
    d = root / "proc" / str(pid)
    (d / "ns").mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    target = root / "namespaces" / ns
    target.parent.mkdir(exist_ok=True)
    target.touch()
    os.link(target, d / "ns" / "pid")


def test_host_observer_on_synced_after_first_scan(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self" / "ns").mkdir(parents=True)
    (tmp_path / "namespaces").mkdir()
    (tmp_path / "namespaces" / "host").touch()
    os.link(tmp_path / "namespaces" / "host", tmp_path / "proc" / "self" / "ns" / "pid")
    _fake_proc(tmp_path, 1, "init", "host")
    _fake_proc(tmp_path, 10, "sleep", "a")
    _fake_proc(tmp_path, 11, "sh", "a")  # same namespace: one container
    _fake_proc(tmp_path, 20, "nginx", "b")
    inode = {n: (tmp_path / "namespaces" / n).stat().st_ino for n in ("a", "b")}
    obs = HostObserver(alt_root=str(tmp_path), poll_interval=0.02)
    assert {c.pid_ns: c.pid for c in obs.containers()} == {inode["a"]: 10, inode["b"]: 20}
    view = obs.copy(namespace="default", label_selector={})  # local processes: any namespace
    with Running(obs) as rec, Running(view) as seen:
        assert rec.wait_synced() == 2
        assert {e.container.name for e in rec.events} == {"sleep", "nginx"}
        assert seen.wait_synced() == 2
        _fake_proc(tmp_path, 30, "late", "c")
        rec.wait_event(lambda ev: ev.kind is START and ev.container.name == "late")
        # a lower pid joins namespace "a" while its first process lives: nothing changes
        _fake_proc(tmp_path, 5, "joiner", "a")
        # namespace "b" dies and a new one gets its inode at once (the kernel does that)
        shutil.rmtree(tmp_path / "proc" / "20")
        _fake_proc(tmp_path, 25, "redis", "b")
        new = rec.wait_event(lambda ev: ev.kind is START and ev.container.name == "redis")
        assert (new.container.pid, new.container.pid_ns) == (25, inode["b"])
        kinds = [(e.kind, e.container.name) for e in rec.events]
        assert kinds.index((STOP, "nginx")) < kinds.index((START, "redis"))
        shutil.rmtree(tmp_path / "proc" / "30")
        rec.wait_event(lambda ev: ev.kind is STOP and ev.container.name == "late")
        time.sleep(0.1)
        assert rec.synced_calls == 1
        assert not [e for e in rec.events if e.container.name in ("sleep", "joiner")][1:]


# --------------------------------------------------------------------------- the cri extra


def test_cri_without_grpc_is_one_line_naming_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        for name in ("grpc", "google.protobuf"):
            sys.modules[name] = None  # import fails as if not installed
        import syshub.topology.kubernetes  # importable without the extra
        from syshub.errors import CriError
        from syshub.topology.cri import CriObserver
        try:
            CriObserver("unix:///run/containerd/containerd.sock")
        except CriError as exc:
            print("CriError:", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("CriError: CRI support needs the `grpc` package")
    assert lines[0].endswith("pip install 'syshub[cri]'")
