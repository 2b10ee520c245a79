"""CRI (Container Runtime Interface): the observer of a container runtime without Kubernetes.

* :class:`CriObserver` (:mod:`.observer`): running containers of containerd / CRI-O,
  followed by polling;
* :func:`new_client`: a :class:`~syshub.topology.cri.client.CriClient` (read-only
  RuntimeService calls through the code generated from ``proto/cri``), which returns
  the values of :mod:`syshub.topology.resolve`.

Importing this package needs no gRPC; using the runtime needs ``grpcio`` and
``protobuf`` (``pip install 'syshub[cri]'``), else a one-line
:class:`~syshub.errors.CriError` says so.
"""

from __future__ import annotations

from syshub.topology.cri.observer import CriObserver, CriRuntime, new_client

__all__ = ["CriObserver", "CriRuntime", "new_client"]
