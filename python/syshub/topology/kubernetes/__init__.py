"""Kubernetes topology: pods from ONE shared list+watch, containers from the CRI.

:class:`KubernetesObserver` follows the pods of a cluster (or of one namespace, or of
one node for a node agent) with a single LIST + WATCH stream of the Kubernetes API
(:mod:`.api`, :mod:`.watch`) and resolves each running pod's containers through the
node's CRI runtime (:mod:`syshub.topology.resolve`): the container init's host pid and
that process's pid namespace inode, the key the kernel probe puts on every event.

Every :meth:`KubernetesObserver.copy` is a *view*: it filters the parent's stream with a
:class:`~syshub.topology.filter.ContainerFilter` (namespace, label selector with
``matchLabels`` and ``matchExpressions``, field selector on ``metadata.name``,
``metadata.namespace``, ``metadata.uid``, ``spec.nodeName``, ``status.phase``). Views
never open a watch or a CRI connection of their own, so a hub running a hundred jobs
still has one watch and one CRI connection.

Container restarts inside a running pod (a new container id, or a new pid namespace)
are reported as STOP of the old container then START of the new one: the CRI is asked
again when a pod's container statuses change and every ``resync_interval`` seconds. A
deleted pod's remembered containers are stopped even when the CRI no longer knows them.

Needs the ``kubernetes`` package (``pip install 'syshub[k8s]'``) and read access to
pods; no privileges beyond reading ``/proc/<pid>/ns/pid`` of the containers.
"""

from __future__ import annotations

from syshub.topology.kubernetes.core import DEFAULT_CRI_ENDPOINT, CriClientLike
from syshub.topology.kubernetes.observer import NODE_NAME_ENV, KubernetesObserver

__all__ = ["DEFAULT_CRI_ENDPOINT", "NODE_NAME_ENV", "CriClientLike", "KubernetesObserver"]
