"""The CRI calls only tests make: run pod sandboxes, create, start, stop and remove
containers (syshub itself only reads). Built on the generated ``runtime.v1`` messages and
:meth:`syshub.topology.cri.client.CriClient.call`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syshub.topology.cri.client import CriClient
from syshub.topology.cri.runtime.v1 import api_pb2 as pb

#: CRI ``NamespaceMode``: POD shares with the pod, CONTAINER is private, NODE is the host's.
NamespaceMode = pb.NamespaceMode


def _namespaces(network: int, pid: int, ipc: int) -> pb.NamespaceOption:
    return pb.NamespaceOption(network=network, pid=pid, ipc=ipc)


@dataclass(frozen=True)
class PodSandboxConfig:
    """What RunPodSandbox needs (a subset of CRI ``PodSandboxConfig``).

    A pod on the host network (``network=NODE``) must leave ``hostname`` empty:
    runc cannot set a hostname without a private UTS namespace.
    """

    name: str
    namespace: str = "default"
    uid: str = ""
    attempt: int = 0
    hostname: str = ""
    log_directory: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    network: int = pb.POD
    pid: int = pb.CONTAINER
    ipc: int = pb.POD
    cgroup_parent: str = ""

    def message(self) -> pb.PodSandboxConfig:
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=self.name, uid=self.uid, namespace=self.namespace, attempt=self.attempt
            ),
            hostname=self.hostname,
            log_directory=self.log_directory,
            labels=dict(self.labels),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=_namespaces(self.network, self.pid, self.ipc)
                ),
            ),
        )


@dataclass(frozen=True)
class ContainerConfig:
    """What CreateContainer needs (a subset of CRI ``ContainerConfig``).

    The namespace modes go into the container's security context; the kubelet
    repeats the pod's network/ipc modes there and sets ``pid=CONTAINER``.
    """

    name: str
    image: str
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    working_dir: str = ""
    envs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 0
    log_path: str = ""
    network: int = pb.POD
    pid: int = pb.CONTAINER
    ipc: int = pb.POD
    privileged: bool = False

    def message(self) -> pb.ContainerConfig:
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=self.name, attempt=self.attempt),
            image=pb.ImageSpec(image=self.image),
            command=list(self.command),
            args=list(self.args),
            working_dir=self.working_dir,
            envs=[pb.KeyValue(key=k, value=v) for k, v in sorted(self.envs.items())],
            labels=dict(self.labels),
            log_path=self.log_path,
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(
                    privileged=self.privileged,
                    namespace_options=_namespaces(self.network, self.pid, self.ipc),
                )
            ),
        )


class Lifecycle:
    """Pod and container lifecycle calls through a connected :class:`CriClient`."""

    def __init__(self, client: CriClient) -> None:
        self.client = client

    def run_pod_sandbox(self, config: PodSandboxConfig, runtime_handler: str = "") -> str:
        req = pb.RunPodSandboxRequest(config=config.message(), runtime_handler=runtime_handler)
        return self.client.call("RunPodSandbox", req, pb.RunPodSandboxResponse).pod_sandbox_id

    def create_container(
        self, pod_sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig
    ) -> str:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id,
            config=config.message(),
            sandbox_config=sandbox_config.message(),
        )
        return self.client.call("CreateContainer", req, pb.CreateContainerResponse).container_id

    def start_container(self, container_id: str) -> None:
        req = pb.StartContainerRequest(container_id=container_id)
        self.client.call("StartContainer", req, pb.StartContainerResponse)

    def stop_container(self, container_id: str, timeout: int = 0) -> None:
        """Stop with a grace period of ``timeout`` seconds (0: kill at once)."""
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
        self.client.call("StopContainer", req, pb.StopContainerResponse)

    def remove_container(self, container_id: str) -> None:
        req = pb.RemoveContainerRequest(container_id=container_id)
        self.client.call("RemoveContainer", req, pb.RemoveContainerResponse)

    def stop_pod_sandbox(self, pod_sandbox_id: str) -> None:
        req = pb.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        self.client.call("StopPodSandbox", req, pb.StopPodSandboxResponse)

    def remove_pod_sandbox(self, pod_sandbox_id: str) -> None:
        req = pb.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        self.client.call("RemovePodSandbox", req, pb.RemovePodSandboxResponse)

    def sandbox_status(self, pod_sandbox_id: str) -> pb.PodSandboxStatusResponse:
        req = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=True)
        return self.client.call("PodSandboxStatus", req, pb.PodSandboxStatusResponse)
