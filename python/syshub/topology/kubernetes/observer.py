"""KubernetesObserver: the containers of the pods of a cluster, a namespace or a node."""

from __future__ import annotations

import os
import threading
from typing import Final

from syshub.topology.filter import ContainerFilter, Views
from syshub.topology.kubernetes.api import Scope, log
from syshub.topology.kubernetes.core import CriClientLike, PodWatch, Settings
from syshub.topology.kubernetes.watch import Backoff
from syshub.topology.model import Container, EmitFn, SyncedFn
from syshub.topology.resolve import PidNsReader, pid_namespace_inode

#: Environment variables naming this node (the downward API usually sets ``NODE_NAME``).
NODE_NAME_ENV: Final[tuple[str, ...]] = ("SYSHUB_NODE_NAME", "NODE_NAME")


class KubernetesObserver(Views):
    """Containers of the pods of a cluster, a namespace or a node, live.

    ``k8s_endpoint`` is a kubeconfig path, or an ``http(s)://host:port`` URL of an API
    server to talk to directly without authentication (``kubectl proxy``), or ``None``:
    the in-cluster service account when running in a pod, else ``$KUBECONFIG`` /
    ``~/.kube/config``. ``namespace`` scopes the watch itself (``None``: all).
    ``node_name`` (default: ``$SYSHUB_NODE_NAME``, then ``$NODE_NAME``) restricts it to
    the pods scheduled on this node, as a node agent needs; ``None`` means every node.

    ``cri`` is a connected-on-demand CRI client (default: a
    :func:`~syshub.topology.cri.new_client` for ``cri_endpoint``); ``alt_root`` is where
    the host's ``/proc`` is mounted when running in a container.

    Every copy (:meth:`copy`, a view narrowed by namespace and selectors, see
    :mod:`syshub.topology.filter`) shares this observer's watch and CRI client and opens
    nothing; closing the observer closes them for all copies. Thread-safe.
    """

    _core: PodWatch
    filter: ContainerFilter

    def __init__(
        self,
        k8s_endpoint: str | None = None,
        namespace: str | None = None,
        *,
        cri_endpoint: str | None = None,
        cri: CriClientLike | None = None,
        node_name: str | None = None,
        alt_root: str = "/",
        label_selector: object | None = None,
        field_selector: object | None = None,
        resync_interval: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        watch_timeout: int = 300,
        request_timeout: float = 30.0,
        poll_interval: float = 0.1,
        pid_ns_reader: PidNsReader | None = None,
    ) -> None:
        if node_name is None:
            node_name = next((os.environ[v] for v in NODE_NAME_ENV if os.environ.get(v)), None)
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("backoff: need 0 < backoff_initial <= backoff_max")
        if watch_timeout < 1 or request_timeout <= 0 or poll_interval <= 0:
            raise ValueError("watch_timeout, request_timeout and poll_interval must be positive")
        settings = Settings(
            scope=Scope(
                endpoint=k8s_endpoint,
                namespace=namespace or None,
                node_name=node_name or None,
                watch_timeout=int(watch_timeout),
                request_timeout=request_timeout,
            ),
            alt_root=alt_root,
            cri_endpoint=cri_endpoint,
            resync_interval=resync_interval,
            backoff=Backoff(backoff_initial, backoff_max),
            poll_interval=poll_interval,
        )
        self._core = PodWatch(settings, cri, pid_ns_reader or pid_namespace_inode)
        self.filter = ContainerFilter().narrow(None, label_selector, field_selector)
        self._closed = threading.Event()

    @property
    def namespace(self) -> str | None:
        """The namespace the shared watch is scoped to (``None``: all)."""
        return self._core.settings.scope.namespace

    @property
    def node_name(self) -> str | None:
        return self._core.settings.scope.node_name

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion the shared watch has seen (lists, events, bookmarks)."""
        return self._core.resource_version

    def stats(self) -> dict[str, int]:
        """Counters of the shared watch: lists, watches, bookmarks, relists_gone, errors..."""
        return self._core.stats()

    # ------------------------------------------------------------------ Observer
    def connect(self) -> None:
        """Load the configuration, check the API answers, connect the CRI.

        Raises :class:`~syshub.errors.KubernetesError` for an unusable configuration or
        an unreachable API server, and :class:`~syshub.errors.CriError` for the CRI.
        """
        self._core.connect()

    def containers(self) -> list[Container]:
        """The containers this view currently selects.

        From the live cache while some ``run`` is following the watch; otherwise from one
        fresh LIST and CRI listing.
        """
        live = self._core.current(self.filter)
        if live is not None:
            return live
        return self._core.snapshot(self.filter)

    def run(self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None) -> None:
        """START for every selected container, ``on_synced()``, then START/STOP as they
        change.

        Blocks until ``stop`` is set or the observer is closed; ``emit`` and
        ``on_synced`` are called from this thread, ``on_synced`` once the first LIST
        (and its CRI look-ups) has been reported. Connection problems are retried with
        backoff and never raised; an unusable configuration raises
        :class:`~syshub.errors.KubernetesError` at once. Exceptions raised by ``emit``
        are logged and do not end the run.
        """
        core = self._core
        core.ensure_client()
        sub = core.subscribe(self.filter)
        poll = core.settings.poll_interval
        try:
            while not (stop.is_set() or self._closed.is_set() or core.closed):
                for event in sub.take(poll):
                    if stop.is_set():
                        break
                    if event is None:  # pods.SYNCED: the initial state is out
                        if on_synced is not None:
                            on_synced()
                        continue
                    try:
                        emit(event)
                    except Exception:
                        log.exception("container event callback failed for %s", event)
        finally:
            core.unsubscribe(sub)

    def close(self) -> None:
        """End this view's runs; on the observer itself, also the shared watch and CRI."""
        self._closed.set()
        if not self._is_copy:
            self._core.close()

    def __repr__(self) -> str:
        parts = [f"namespace={self.namespace!r}", f"node={self.node_name!r}"]
        return f"KubernetesObserver({', '.join(parts + self.filter.describe())})"
