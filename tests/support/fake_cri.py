"""In-memory CRI runtimes for observer tests, and a real gRPC server that speaks only
``runtime.v1alpha2``.

:class:`FakeCri` implements the read side of :class:`syshub.topology.cri.client.CriClient`
(what :class:`~syshub.topology.cri.CriObserver` and the Kubernetes observer call).
A container's pid is either a real process (its pid namespace is read from ``/proc``)
or a made-up pid with a stand-in ``<alt_root>/proc/<pid>/ns/pid`` file whose inode
plays the pid namespace.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from syshub.topology.cri.runtime.v1 import api_pb2 as pb
from syshub.topology.resolve import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerState,
    CriCallError,
    CriContainer,
    CriContainerStatus,
    CriPodSandbox,
    PodSandboxState,
)


class FakeCri:
    """Sandboxes and running containers, kept in memory; thread-safe."""

    def __init__(self, alt_root: Path | None = None) -> None:
        self.alt_root = alt_root
        self._lock = threading.Lock()
        self.sandboxes: dict[str, CriPodSandbox] = {}
        self.containers: dict[str, CriContainer] = {}
        self.pids: dict[str, int] = {}
        self.connects = 0
        self.closed = 0
        self.fail_next = 0  # the next N ListContainers fail with UNAVAILABLE
        self.list_calls: list[Mapping[str, str] | None] = []
        self.status_calls: list[str] = []
        self._next_pid = 1000

    # ------------------------------------------------------------------ building
    def add_pod(
        self,
        pod_id: str,
        name: str,
        namespace: str,
        labels: Mapping[str, str] | None = None,
        uid: str = "",
    ) -> CriPodSandbox:
        uid = uid or f"uid-{pod_id}"
        sandbox = CriPodSandbox(
            id=pod_id,
            name=name,
            uid=uid,
            namespace=namespace,
            attempt=0,
            state=PodSandboxState.READY,
            created_at=1,
            labels={
                **(labels or {}),
                LABEL_POD_NAME: name,
                LABEL_POD_NAMESPACE: namespace,
                LABEL_POD_UID: uid,
            },
        )
        with self._lock:
            self.sandboxes[pod_id] = sandbox
        return sandbox

    def add_container(
        self,
        cid: str,
        pod_id: str,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        pid: int | None = None,
        process_alive: bool = True,
        kubelet_labels: bool = True,
        image: str = "busybox",
    ) -> int:
        """A running container; without ``pid`` a made-up one (``alt_root`` needed)."""
        pod = self.sandboxes[pod_id]
        if pid is None:
            assert self.alt_root is not None, "a made-up pid needs alt_root"
            self._next_pid += 1
            pid = self._next_pid
            if process_alive:
                ns = self.alt_root / "proc" / str(pid) / "ns"
                ns.mkdir(parents=True)
                (ns / "pid").write_text(cid)
        kubelet = {
            LABEL_CONTAINER_NAME: name,
            LABEL_POD_NAME: pod.name,
            LABEL_POD_NAMESPACE: pod.namespace,
            LABEL_POD_UID: pod.uid,
        }
        container = CriContainer(
            id=cid,
            pod_sandbox_id=pod_id,
            name=name,
            attempt=0,
            image=image,
            image_ref="sha256:0",
            state=ContainerState.RUNNING,
            created_at=2,
            labels={**(kubelet if kubelet_labels else {}), **(labels or {})},
        )
        with self._lock:
            self.pids[cid] = pid
            self.containers[cid] = container
        return pid

    def add(
        self,
        pod: Mapping[str, Any] | None,
        name: str = "main",
        *,
        pid: int | None = None,
        cid: str | None = None,
        labels: Mapping[str, str] | None = None,
        kubelet_labels: bool = True,
    ) -> str:
        """A container of a Kubernetes pod object (its sandbox is ``sb-<uid>``), or of no
        pod at all (``None``: no kubelet labels). ``pid`` defaults to this process."""
        meta = pod["metadata"] if pod is not None else {"uid": "none", "name": "", "namespace": ""}
        pod_id = f"sb-{meta['uid']}"
        if pod_id not in self.sandboxes:
            self.add_pod(pod_id, meta["name"], meta["namespace"], uid=meta["uid"])
        cid = cid or uuid.uuid4().hex * 2
        self.add_container(
            cid,
            pod_id,
            name,
            labels,
            pid=pid if pid is not None else os.getpid(),
            kubelet_labels=kubelet_labels and pod is not None,
            image="docker.io/library/busybox:1",
        )
        return cid

    def remove(self, cid: str) -> None:
        with self._lock:
            del self.containers[cid]

    def forget_pod(self, uid: str) -> None:
        with self._lock:
            for cid in [
                c.id for c in self.containers.values() if c.labels.get(LABEL_POD_UID) == uid
            ]:
                del self.containers[cid]

    # ------------------------------------------------------------------ the CRI calls
    def connect(self) -> None:
        self.connects += 1

    def close(self) -> None:
        self.closed += 1

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
        container_id: str = "",
    ) -> list[CriContainer]:
        with self._lock:
            self.list_calls.append(dict(label_selector) if label_selector else None)
            if self.fail_next:
                self.fail_next -= 1
                raise CriCallError("fake: ListContainers failed: UNAVAILABLE", code="UNAVAILABLE")
            wanted = label_selector or {}
            return [
                c
                for c in self.containers.values()
                if all(c.labels.get(k) == v for k, v in wanted.items())
            ]

    def container_status(self, container_id: str) -> CriContainerStatus:
        with self._lock:
            self.status_calls.append(container_id)
            c = self.containers.get(container_id)
            if c is None:
                raise CriCallError(f"container {container_id} not found", code="NOT_FOUND")
            pid = self.pids[container_id]
        return CriContainerStatus(
            id=c.id,
            name=c.name,
            attempt=0,
            state=c.state,
            created_at=c.created_at,
            started_at=3,
            finished_at=0,
            exit_code=0,
            image="docker.io/library/busybox:latest" if c.image == "busybox" else "",
            image_ref=c.image_ref,
            reason="",
            message="",
            log_path="",
            pid=pid,
            labels=c.labels,
        )

    def list_pod_sandboxes(
        self,
        ready_only: bool = False,
        label_selector: Mapping[str, str] | None = None,
        pod_sandbox_id: str = "",
    ) -> list[CriPodSandbox]:
        with self._lock:
            return list(self.sandboxes.values())


#: field 99, wire type fixed32 (tag varint 0x9d 0x06), value 7: unknown to every reader
_FUTURE_FIELD = b"\x9d\x06\x07\x00\x00\x00"


class FakeGrpcRuntime:
    """A real gRPC server on a unix socket serving only ``runtime.v1alpha2`` (Version,
    ListContainers and a ContainerStatus that always fails), built on the v1 messages:
    the two versions share every field number syshub uses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        self.requests: list[tuple[str, Any]] = []

        def handler(fn: Any, request: Any, reply: Any) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=request.FromString,
                response_serializer=reply.SerializeToString,
            )

        handlers = {
            "Version": handler(self._version, pb.VersionRequest, pb.VersionResponse),
            "ListContainers": handler(
                self._list, pb.ListContainersRequest, pb.ListContainersResponse
            ),
            "ContainerStatus": handler(
                self._status, pb.ContainerStatusRequest, pb.ContainerStatusResponse
            ),
        }
        generic = grpc.method_handlers_generic_handler("runtime.v1alpha2.RuntimeService", handlers)
        self.server.add_generic_rpc_handlers((generic,))
        self.server.add_insecure_port(f"unix://{path}")

    def _version(self, request: pb.VersionRequest, context: Any) -> pb.VersionResponse:
        self.requests.append(("Version", request))
        return pb.VersionResponse(
            version="0.1.0",
            runtime_name="fake",
            runtime_version="9.9",
            runtime_api_version="v1alpha2",
        )

    def _list(self, request: pb.ListContainersRequest, context: Any) -> pb.ListContainersResponse:
        self.requests.append(("ListContainers", request))
        container = pb.Container(
            id="abc",
            pod_sandbox_id="pod1",
            metadata=pb.ContainerMetadata(name="app", attempt=2),
            image=pb.ImageSpec(image="img:1"),
            state=pb.CONTAINER_RUNNING,
            created_at=123,
            labels={"k": "v"},
        )
        container.MergeFromString(_FUTURE_FIELD)  # the runtime is newer than us
        return pb.ListContainersResponse(containers=[container])

    def _status(
        self, request: pb.ContainerStatusRequest, context: Any
    ) -> pb.ContainerStatusResponse:
        context.abort(grpc.StatusCode.NOT_FOUND, 'container "x" not found\nin store')
        raise AssertionError("unreachable")

    def __enter__(self) -> FakeGrpcRuntime:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(None)
