"""CRI (Container Runtime Interface): the observer of a container runtime without Kubernetes.

* :class:`CriObserver` (:mod:`.observer`): running containers of containerd / CRI-O,
  followed by polling;
* :func:`new_client`: a :class:`~syshub.topology.cri.client.CriClient` (read-only
  RuntimeService calls through the code generated from ``proto/cri``);
* :mod:`.model`: the values the client returns, its errors, :func:`parse_endpoint`.

Importing this package needs no gRPC; using the runtime needs ``grpcio`` and
``protobuf`` (``pip install 'syshub[cri]'``), else a one-line
:class:`~syshub.errors.CriError` says so.
"""

from __future__ import annotations

from syshub.topology.cri.model import (
    ContainerState,
    CriCallError,
    CriContainer,
    CriContainerStatus,
    CriPodSandbox,
    CriPodSandboxStatus,
    CriRuntime,
    NamespaceMode,
    PodSandboxState,
    parse_endpoint,
)
from syshub.topology.cri.observer import CriObserver, new_client
from syshub.topology.resolve import ProcessGoneError, pid_namespace_inode

__all__ = [
    "ContainerState",
    "CriCallError",
    "CriContainer",
    "CriContainerStatus",
    "CriObserver",
    "CriPodSandbox",
    "CriPodSandboxStatus",
    "CriRuntime",
    "NamespaceMode",
    "PodSandboxState",
    "ProcessGoneError",
    "new_client",
    "parse_endpoint",
    "pid_namespace_inode",
]
