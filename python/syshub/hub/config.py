"""Where a Hub finds its topology, and its probe settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from syshub.topology import HostObserver, Observer


@dataclass(frozen=True)
class HubConfig:
    """With ``k8s_endpoint`` (kubeconfig path or URL) or inside a cluster, pods
    come from Kubernetes and containers from the CRI at ``cri_endpoint``;
    with only ``cri_endpoint``, containers come from the CRI; otherwise local
    pid namespaces are the containers (:class:`~syshub.topology.HostObserver`)."""

    alt_root: str = "/"
    cri_endpoint: str | None = None
    k8s_endpoint: str | None = None
    k8s_namespace: str | None = None
    bpf_object: str | None = None
    ring_bytes: int = 16 << 20
    poll_ms: int = 10
    node_name: str | None = None
    tracepoint_syscalls: int | None = None
    """Syscalls hooked through their own tracepoints at most (see
    :class:`~syshub.probe.Probe`; None: the probe's default, 3)."""
    fair_share_pct: int = 50
    """Past this percent of the ring pending, each kernel key may keep at most
    as many bytes pending as are free; the excess is dropped and counted as
    ``over_share`` (see :class:`~syshub.probe.Probe`; 100: off)."""
    max_filter_keys: int | None = None
    """Kernel filter keys (pid namespace, syscall) installed at most (None: as
    many as the kernel's filter map holds); a key past the limit fails as on a
    full map: the container stays untraced and its job's error says why."""
    flush_timeout: float = 1.0
    """How long deleting a trace waits for the events the kernel already
    emitted for it to be routed (calls still running are counted as dropped)."""


def default_observer(config: HubConfig) -> Observer:
    """The observer :class:`HubConfig` selects."""
    if config.k8s_endpoint or os.environ.get("KUBERNETES_SERVICE_HOST"):
        from syshub.topology.kubernetes import KubernetesObserver

        return KubernetesObserver(
            config.k8s_endpoint,
            config.k8s_namespace,
            cri_endpoint=config.cri_endpoint,
            node_name=config.node_name,
            alt_root=config.alt_root,
        )
    if config.cri_endpoint:
        from syshub.topology.cri import CriObserver

        return CriObserver(config.cri_endpoint, alt_root=config.alt_root)
    return HostObserver(alt_root=config.alt_root)
