"""Topology: which containers (and pods) own which kernel pid namespaces.

* :mod:`~syshub.topology.model`: :class:`Container`, start/stop events and the
  :class:`Observer` protocol;
* :mod:`~syshub.topology.cache`: :class:`Topology`, the pid namespace cache;
* :mod:`~syshub.topology.filter`: the one container filter (namespace, label,
  field and host selectors) every observer applies;
* :mod:`~syshub.topology.resolve`: the one CRI container -> :class:`Container`
  resolver (host pid and pid namespace inode);
* :mod:`~syshub.topology.proc`: :class:`LocalObserver` and :class:`HostObserver`;
* :mod:`syshub.topology.cri` and :mod:`syshub.topology.kubernetes`: the
  container runtime and cluster observers (optional extras ``cri`` / ``k8s``).
"""

from __future__ import annotations

from syshub.topology.cache import Topology
from syshub.topology.model import (
    Container,
    ContainerEvent,
    ContainerEventKind,
    EmitFn,
    Observer,
    SyncedFn,
)
from syshub.topology.proc import HostObserver, LocalObserver

__all__ = [
    "Container",
    "ContainerEvent",
    "ContainerEventKind",
    "EmitFn",
    "HostObserver",
    "LocalObserver",
    "Observer",
    "SyncedFn",
    "Topology",
]
