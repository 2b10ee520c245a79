"""Kubernetes topology: pods from ONE shared list+watch, containers from the CRI.

:class:`KubernetesObserver` follows the pods of a cluster (or of one namespace, or of
one node for a node agent) with a single LIST + WATCH stream of the Kubernetes API and
resolves each running pod's containers through the node's CRI runtime: the container
init's host pid (``ContainerStatus``) and that process's pid namespace inode, which is
the key the kernel probe puts on every event.

Every :meth:`KubernetesObserver.copy` is a *view*: it filters the parent's stream by
its own namespace, label selector (``matchLabels`` and ``matchExpressions``) and field
selector (``metadata.name``, ``metadata.namespace``, ``spec.nodeName``,
``status.phase``). Views never open a watch or a CRI connection of their own, so a hub
running a hundred jobs still has one watch and one CRI connection (swoll opened one of
each per job).

The watch follows the API's protocol: LIST (remember ``resourceVersion``), WATCH from
it with bookmarks (a BOOKMARK only advances the version), RELIST on ``410 Gone`` and
diff against the cache, reconnect from the last version with capped, jittered
exponential backoff on connection errors. ``run`` never raises for those.

Container restarts inside a running pod (a new container id, or a new pid namespace)
are reported as STOP of the old container then START of the new one: the CRI is asked
again when a pod's container statuses change and every ``resync_interval`` seconds.
A deleted pod's remembered containers are stopped even when the CRI no longer knows
them.

Needs the ``kubernetes`` package (``pip install syshub[k8s]``) and read access to pods;
no privileges beyond reading ``/proc/<pid>/ns/pid`` of the containers.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol

from syshub.errors import KubernetesError
from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.topology.base import Container, ContainerEvent, ContainerEventKind, EmitFn
from syshub.topology.cri import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    CriClient,
    pid_namespace_inode,
)

__all__ = ["DEFAULT_CRI_ENDPOINT", "NODE_NAME_ENV", "CriClientLike", "KubernetesObserver"]

log = logging.getLogger(__name__)

#: The CRI socket used when none is given (containerd's default).
DEFAULT_CRI_ENDPOINT: Final = "unix:///run/containerd/containerd.sock"

#: Environment variables naming this node (the downward API usually sets ``NODE_NAME``).
NODE_NAME_ENV: Final[tuple[str, ...]] = ("SYSHUB_NODE_NAME", "NODE_NAME")

_URL = re.compile(r"^https?://", re.IGNORECASE)
_RUNNING: Final = "Running"


# --------------------------------------------------------------------------- CRI contract


class CriContainerLike(Protocol):
    """What the observer reads from a CRI ``Container`` (see ``syshub.topology.cri``)."""

    @property
    def id(self) -> str: ...
    @property
    def pod_sandbox_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


class CriStatusLike(Protocol):
    @property
    def pid(self) -> int: ...


class CriClientLike(Protocol):
    """The part of :class:`syshub.topology.cri.CriClient` the observer uses."""

    def connect(self) -> None: ...

    def list_containers(
        self,
        state_running_only: bool = True,
        label_selector: Mapping[str, str] | None = None,
    ) -> Sequence[CriContainerLike]: ...

    def container_status(self, container_id: str) -> CriStatusLike: ...

    def close(self) -> None: ...


PidNsReader = Callable[[int, str], int]


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------- configuration


def _load_configuration(endpoint: str | None) -> Any:
    """A ``kubernetes.client.Configuration`` for ``endpoint`` (see KubernetesObserver)."""
    try:
        from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
            client as k8s_client,
        )
        from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
            config as k8s_config,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise KubernetesError(
            "the `kubernetes` package is not installed (pip install 'syshub[k8s]')"
        ) from exc

    cfg: Any = k8s_client.Configuration()
    if endpoint and _URL.match(endpoint):
        cfg.host = endpoint.rstrip("/")
        return cfg
    if endpoint:
        path = os.path.expanduser(endpoint)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            load_incluster: Any = k8s_config.load_incluster_config
            load_incluster(client_configuration=cfg)
        except Exception as exc:
            raise KubernetesError(
                f"cannot load the in-cluster Kubernetes configuration: {_one_line(exc)}"
            ) from exc
        return cfg
    else:
        path = os.path.expanduser(
            (os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]
        )
        if not os.path.exists(path):
            raise KubernetesError(
                "no Kubernetes configuration: not running in a pod (KUBERNETES_SERVICE_HOST "
                f"is unset) and no kubeconfig at `{path}`; pass a kubeconfig path or an API URL"
            )
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise KubernetesError(
            f"cannot read kubeconfig `{path}`: {exc.strerror or _one_line(exc)}"
        ) from exc
    try:
        load_kube: Any = k8s_config.load_kube_config
        load_kube(config_file=path, client_configuration=cfg, persist_config=False)
    except Exception as exc:
        raise KubernetesError(f"invalid kubeconfig `{path}`: {_one_line(exc)}") from exc
    return cfg


# --------------------------------------------------------------------------- selectors


def _label_selector(value: object) -> LabelSelector | None:
    if value is None:
        return None
    if isinstance(value, LabelSelector):
        return None if value.is_empty() else value
    if isinstance(value, str):
        sel = LabelSelector.parse(value)
    elif isinstance(value, Mapping):
        body = dict(value)
        if set(body) <= {"matchLabels", "matchExpressions"}:
            sel = LabelSelector.from_dict(body)
        else:
            sel = LabelSelector.from_dict({"matchLabels": body})
    else:
        raise TypeError(f"label_selector: expected LabelSelector, str or mapping, got {value!r}")
    return None if sel.is_empty() else sel


def _field_selector(value: object) -> FieldSelector | None:
    if value is None:
        return None
    if isinstance(value, FieldSelector):
        return None if value.is_empty() else value
    if isinstance(value, str):
        sel = FieldSelector.parse(value)
    elif isinstance(value, Mapping):
        body = dict(value)
        if set(body) <= {"matchLabels", "matchExpressions"}:
            sel = FieldSelector.from_dict(body)
        else:
            sel = FieldSelector.from_dict({"matchLabels": body})
    else:
        raise TypeError(f"field_selector: expected FieldSelector, str or mapping, got {value!r}")
    return None if sel.is_empty() else sel


@dataclasses.dataclass(frozen=True, slots=True)
class _Filter:
    """A view's restriction; every part must hold (a copy of a view narrows it further)."""

    namespaces: tuple[str, ...] = ()
    labels: tuple[LabelSelector, ...] = ()
    fields: tuple[FieldSelector, ...] = ()

    def narrow(
        self, namespace: str | None, labels: LabelSelector | None, fields: FieldSelector | None
    ) -> _Filter:
        return _Filter(
            self.namespaces + ((namespace,) if namespace else ()),
            self.labels + ((labels,) if labels else ()),
            self.fields + ((fields,) if fields else ()),
        )

    def matches(self, pod: _Pod) -> bool:
        if any(ns != pod.namespace for ns in self.namespaces):
            return False
        if not all(sel.matches(pod.labels) for sel in self.labels):
            return False
        return all(sel.matches(pod.fields) for sel in self.fields)


# --------------------------------------------------------------------------- pod state


def _status_signature(pod: Mapping[str, Any]) -> tuple[object, ...]:
    """What in a pod's status means "ask the CRI again" (ids, restarts, running or not)."""
    status = pod.get("status") or {}
    sig: list[object] = [status.get("phase", "")]
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or ():
            state = cs.get("state") or {}
            sig.append(
                (
                    key,
                    cs.get("name", ""),
                    cs.get("containerID", ""),
                    cs.get("restartCount", 0),
                    tuple(sorted(state)),
                )
            )
    return tuple(sig)


@dataclasses.dataclass(frozen=True, slots=True)
class _Pod:
    """One pod as last seen, and the containers resolved for it (by container id)."""

    uid: str
    name: str
    namespace: str
    node: str
    phase: str
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    signature: tuple[object, ...]
    considered: bool
    containers: Mapping[str, Container]

    @staticmethod
    def from_dict(
        raw: Mapping[str, Any], node_name: str | None, containers: Mapping[str, Container]
    ) -> _Pod:
        meta = raw.get("metadata") or {}
        fields = FieldSelector.pod_fields(raw)
        node = fields["spec.nodeName"]
        phase = fields["status.phase"]
        considered = phase == _RUNNING and (node_name is None or node == node_name)
        return _Pod(
            uid=str(meta.get("uid", "")),
            name=fields["metadata.name"],
            namespace=fields["metadata.namespace"],
            node=node,
            phase=phase,
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            fields=fields,
            signature=_status_signature(raw),
            considered=considered,
            containers=dict(containers) if considered else {},
        )


def _same_process(a: Container, b: Container) -> bool:
    return a.id == b.id and a.pid == b.pid and a.pid_ns == b.pid_ns


def _containers_differ(a: Mapping[str, Container], b: Mapping[str, Container]) -> bool:
    if a.keys() != b.keys():
        return True
    return any(not _same_process(a[k], b[k]) or a[k] != b[k] for k in a)


# --------------------------------------------------------------------------- subscriptions


class _Subscription:
    """One running ``run`` of a view: what it was told, and what it still has to be told."""

    def __init__(self, flt: _Filter) -> None:
        self.filter = flt
        self.reported: dict[str, dict[str, Container]] = {}
        self.queue: collections.deque[ContainerEvent] = collections.deque()
        self.cond = threading.Condition()

    def diff(self, uid: str, pod: _Pod | None) -> list[ContainerEvent]:
        """Events turning what this subscriber knows about ``uid`` into ``pod``'s state.

        Called with the watch's state lock held, so events of one pod are queued in order.
        """
        new: Mapping[str, Container] = (
            pod.containers if pod is not None and self.filter.matches(pod) else {}
        )
        old = self.reported.get(uid, {})
        events: list[ContainerEvent] = []
        kept: dict[str, Container] = {}
        for cid, c in old.items():
            n = new.get(cid)
            if n is None or not _same_process(n, c):
                events.append(ContainerEvent(ContainerEventKind.STOP, c))
            else:
                kept[cid] = c  # keep the value we announced, so START and STOP are equal
        for cid, c in new.items():
            if cid not in kept:
                events.append(ContainerEvent(ContainerEventKind.START, c))
                kept[cid] = c
        if kept:
            self.reported[uid] = kept
        else:
            self.reported.pop(uid, None)
        return events

    def push(self, events: list[ContainerEvent]) -> None:
        if events:
            with self.cond:
                self.queue.extend(events)
                self.cond.notify_all()

    def take(self, timeout: float) -> list[ContainerEvent]:
        with self.cond:
            if not self.queue:
                self.cond.wait(timeout)
            out = list(self.queue)
            self.queue.clear()
            return out

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()


class _Generation:
    """One lifetime of the shared watch (from the first subscriber to the last)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.response: Any = None
        self.events = 0  # watch events received (only the watch thread writes it)
        self.threads: list[threading.Thread] = []

    def set_response(self, resp: Any) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            self.response = resp
            return True

    def abort(self) -> None:
        """Stop, and unblock a watch read in progress by shutting its socket down."""
        self.stop.set()
        with self.lock:
            resp = self.response
        if resp is not None:
            _shutdown_response(resp)


def _shutdown_response(resp: Any) -> None:
    try:
        shutdown = getattr(resp, "shutdown", None)
        if shutdown is not None:  # urllib3 >= 2.3
            shutdown()
            return
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            import socket

            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # pragma: no cover - best effort
        pass


class _Gone(Exception):
    """The requested resourceVersion is too old (410): relist."""


class _WatchError(Exception):
    """The watch stream reported an error other than 410."""


# --------------------------------------------------------------------------- the shared core


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings:
    endpoint: str | None
    namespace: str | None
    node_name: str | None
    alt_root: str
    cri_endpoint: str | None
    resync_interval: float
    backoff_initial: float
    backoff_max: float
    watch_timeout: int
    request_timeout: float
    poll_interval: float


class _PodWatch:
    """The state shared by an observer and all its copies: one watch, one CRI client."""

    def __init__(
        self,
        settings: _Settings,
        cri: CriClientLike | None,
        pid_ns_reader: PidNsReader,
    ) -> None:
        self.settings = settings
        self._cri = cri
        self._owns_cri = cri is None
        self._cri_connected = False
        self._read_pid_ns = pid_ns_reader
        self._api: Any = None
        self._api_client: Any = None
        self._client_lock = threading.Lock()
        # _apply_lock serialises every change (watch events, relists, resyncs) including
        # their CRI look-ups; _state_lock guards the committed state and the subscribers.
        self._apply_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pods: dict[str, _Pod] = {}
        self._subs: set[_Subscription] = set()
        self._gen: _Generation | None = None
        self._synced = False
        self._closed = threading.Event()
        self._resource_version: str | None = None
        self._counters: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ clients
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def resource_version(self) -> str | None:
        return self._resource_version

    def stats(self) -> dict[str, int]:
        with self._state_lock:
            out = dict(self._counters)
            out["pods"] = len(self._pods)
            out["containers"] = sum(len(p.containers) for p in self._pods.values())
            out["subscribers"] = len(self._subs)
            return out

    def _count(self, what: str) -> None:
        with self._state_lock:
            self._counters[what] += 1

    def ensure_client(self) -> None:
        """Load the configuration and build the API client (config errors raise)."""
        with self._client_lock:
            if self._closed.is_set():
                raise KubernetesError("the Kubernetes observer is closed")
            if self._api is not None:
                return
            cfg = _load_configuration(self.settings.endpoint)
            from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
                client as k8s_client,
            )

            api_client: Any = k8s_client.ApiClient(cfg)
            self._api_client = api_client
            self._api = k8s_client.CoreV1Api(api_client)

    def ensure_cri(self) -> CriClientLike:
        with self._client_lock:
            if self._cri is None:
                self._cri = CriClient(
                    self.settings.cri_endpoint or DEFAULT_CRI_ENDPOINT,
                    timeout=min(self.settings.request_timeout, 10.0),
                )
            if not self._cri_connected:
                self._cri.connect()
                self._cri_connected = True
            return self._cri

    def connect(self) -> None:
        self.ensure_client()
        try:
            from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
                client as k8s_client,
            )

            version: Any = k8s_client.VersionApi(self._api_client).get_code(
                _request_timeout=self._timeout()
            )
            log.debug("kubernetes API %s at %s", version.git_version, self._host())
        except KubernetesError:
            raise
        except Exception as exc:
            raise KubernetesError(
                f"cannot reach the Kubernetes API at {self._host()}: {_one_line(exc)}"
            ) from exc
        self.ensure_cri()

    def _host(self) -> str:
        return str(getattr(getattr(self._api_client, "configuration", None), "host", "?"))

    def _timeout(self) -> tuple[float, float]:
        t = self.settings.request_timeout
        return (min(t, 5.0), t)

    def close(self) -> None:
        self._closed.set()
        with self._state_lock:
            gen, self._gen = self._gen, None
            subs = list(self._subs)
        for sub in subs:
            sub.wake()
        if gen is not None:
            gen.abort()
            for t in gen.threads:
                if t is not threading.current_thread():
                    t.join(5.0)
        with self._client_lock:
            if self._api_client is not None:
                with contextlib.suppress(Exception):
                    self._api_client.close()
            if self._cri is not None and self._owns_cri:
                with contextlib.suppress(Exception):
                    self._cri.close()
            self._cri_connected = False

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, flt: _Filter) -> _Subscription:
        sub = _Subscription(flt)
        with self._state_lock:
            if self._closed.is_set():
                raise KubernetesError("the Kubernetes observer is closed")
            self._subs.add(sub)
            if self._synced:
                events: list[ContainerEvent] = []
                for uid, pod in self._pods.items():
                    events.extend(sub.diff(uid, pod))
                sub.push(events)
            if self._gen is None:
                self._start_generation()
        return sub

    def unsubscribe(self, sub: _Subscription) -> None:
        gen: _Generation | None = None
        with self._state_lock:
            self._subs.discard(sub)
            if not self._subs and self._gen is not None:
                gen, self._gen = self._gen, None
                gen.stop.set()  # before a new generation can start
                self._synced = False
        if gen is not None:
            gen.abort()

    def _start_generation(self) -> None:
        # caller holds _state_lock
        gen = _Generation()
        self._gen = gen
        self._synced = False
        gen.threads = [
            threading.Thread(
                target=self._watch_loop, args=(gen,), name="syshub-k8s-watch", daemon=True
            ),
            threading.Thread(
                target=self._resync_loop, args=(gen,), name="syshub-k8s-resync", daemon=True
            ),
        ]
        for t in gen.threads:
            t.start()

    def current(self, flt: _Filter) -> list[Container] | None:
        """Matching containers from the live cache, or None when the cache is not live."""
        with self._state_lock:
            if self._gen is None or not self._synced:
                return None
            return [
                c
                for pod in self._pods.values()
                if flt.matches(pod)
                for c in pod.containers.values()
            ]

    def snapshot(self, flt: _Filter) -> list[Container]:
        """One LIST and one CRI listing, without a watch (for ``containers()`` when idle)."""
        self.ensure_client()
        self.ensure_cri()  # CriError if the runtime cannot be reached
        try:
            items, _ = self._list()
        except Exception as exc:
            raise KubernetesError(f"cannot list pods at {self._host()}: {_one_line(exc)}") from exc
        index = self._cri_index()
        out: list[Container] = []
        for raw in items:
            pod = _Pod.from_dict(raw, self.settings.node_name, {})
            if not pod.considered or not flt.matches(pod):
                continue
            found = self._resolve(pod, index.get(pod.uid, []) if index else [], {})
            out.extend(found.values())
        return out

    # ------------------------------------------------------------------ committing
    def _commit(self, gen: _Generation, changes: Mapping[str, _Pod | None], full: bool) -> None:
        """Install pod states and tell every subscriber what changed for it."""
        with self._state_lock:
            if gen.stop.is_set() or self._gen is not gen:
                return
            for uid, pod in changes.items():
                if pod is None:
                    self._pods.pop(uid, None)
                else:
                    self._pods[uid] = pod
            if full:
                self._synced = True
            if not self._synced:
                return
            for sub in self._subs:
                uids: set[str] = set(changes)
                if full:
                    uids |= set(self._pods) | set(sub.reported)
                events: list[ContainerEvent] = []
                for uid in sorted(uids):
                    events.extend(sub.diff(uid, self._pods.get(uid)))
                sub.push(events)

    # ------------------------------------------------------------------ CRI
    def _cri_index(self) -> dict[str, list[CriContainerLike]] | None:
        """All running CRI containers grouped by pod uid (one CRI call); None on error."""
        try:
            listed = self.ensure_cri().list_containers(state_running_only=True)
        except Exception as exc:
            log.warning("CRI ListContainers failed: %s", _one_line(exc))
            self._count("cri_errors")
            return None
        index: dict[str, list[CriContainerLike]] = {}
        for c in listed:
            uid = c.labels.get(LABEL_POD_UID)
            if uid:
                index.setdefault(uid, []).append(c)
        return index

    def _cri_for_pod(self, uid: str) -> list[CriContainerLike] | None:
        try:
            listed = self.ensure_cri().list_containers(
                state_running_only=True, label_selector={LABEL_POD_UID: uid}
            )
        except Exception as exc:
            log.warning("CRI ListContainers for pod %s failed: %s", uid, _one_line(exc))
            self._count("cri_errors")
            return None
        return [c for c in listed if c.labels.get(LABEL_POD_UID) == uid]

    def _pid_ns(self, pid: int) -> int:
        """Pid namespace inode of host process ``pid``; 0 when it is gone (or unreadable)."""
        if pid <= 0:
            return 0
        try:
            return int(self._read_pid_ns(pid, self.settings.alt_root))
        except ProcessLookupError:
            return 0
        except Exception as exc:
            log.warning("cannot read the pid namespace of process %d: %s", pid, _one_line(exc))
            return 0

    def _resolve(
        self,
        pod: _Pod,
        listed: Sequence[CriContainerLike],
        previous: Mapping[str, Container],
    ) -> dict[str, Container]:
        """Containers of ``pod`` from the CRI listing, reusing still-living known ones."""
        out: dict[str, Container] = {}
        for c in listed:
            prev = previous.get(c.id)
            if prev is not None and self._pid_ns(prev.pid) == prev.pid_ns:
                if prev.pod_labels != pod.labels or prev.pod != pod.name:
                    prev = dataclasses.replace(prev, pod=pod.name, pod_labels=pod.labels)
                out[c.id] = prev
                continue
            try:
                pid = int(self.ensure_cri().container_status(c.id).pid)
            except Exception as exc:
                log.debug("CRI ContainerStatus %s failed: %s", c.id, _one_line(exc))
                continue
            pid_ns = self._pid_ns(pid)
            if pid_ns == 0:
                log.debug("container %s: process %d is gone", c.id, pid)
                continue
            labels = dict(c.labels)
            out[c.id] = Container(
                id=c.id,
                name=c.name or labels.get(LABEL_CONTAINER_NAME, ""),
                pid=pid,
                pid_ns=pid_ns,
                pod=pod.name,
                namespace=pod.namespace,
                pod_uid=pod.uid,
                sandbox_id=c.pod_sandbox_id,
                image=c.image,
                labels=labels,
                pod_labels=pod.labels,
                node=pod.node,
            )
        return out

    # ------------------------------------------------------------------ applying changes
    def _pod_state(
        self,
        raw: Mapping[str, Any],
        index: Mapping[str, Sequence[CriContainerLike]] | None,
        force_cri: bool,
    ) -> _Pod:
        """The new state of one pod; asks the CRI only when something may have changed."""
        node_name = self.settings.node_name
        bare = _Pod.from_dict(raw, node_name, {})
        old = self._pods.get(bare.uid)
        previous: Mapping[str, Container] = old.containers if old is not None else {}
        if not bare.considered:
            return bare
        if not force_cri and old is not None and old.considered and old.signature == bare.signature:
            kept = {
                cid: (
                    c
                    if c.pod_labels == bare.labels
                    else dataclasses.replace(c, pod_labels=bare.labels)
                )
                for cid, c in previous.items()
            }
            return dataclasses.replace(bare, containers=kept)
        listed: Sequence[CriContainerLike] | None = (
            index.get(bare.uid, []) if index is not None else self._cri_for_pod(bare.uid)
        )
        if listed is None:  # CRI unavailable: keep what we knew; the resync retries
            return dataclasses.replace(bare, containers=dict(previous))
        return dataclasses.replace(bare, containers=self._resolve(bare, listed, previous))

    def _apply_event(
        self, gen: _Generation, kind: str, raw: Mapping[str, Any], rv: str | None
    ) -> None:
        """Apply one watch event (a BOOKMARK only advances the resourceVersion)."""
        uid = str((raw.get("metadata") or {}).get("uid", ""))
        with self._apply_lock:
            if uid and kind == "DELETED":
                self._commit(gen, {uid: None}, full=False)
            elif uid and kind in ("ADDED", "MODIFIED"):
                self._commit(gen, {uid: self._pod_state(raw, None, force_cri=False)}, full=False)
            if rv:
                with self._state_lock:
                    if self._gen is gen and not gen.stop.is_set():
                        self._resource_version = rv

    def _relist(self, gen: _Generation) -> None:
        items, rv = self._list()
        with self._apply_lock:
            index = self._cri_index()
            changes: dict[str, _Pod | None] = {}
            for raw in items:
                # With a fresh CRI listing at hand, re-check every pod: after a 410 or a
                # restart of the watch the cache may be old.
                pod = self._pod_state(raw, index, force_cri=index is not None)
                if pod.uid:
                    changes[pod.uid] = pod
            for uid in self._pods:
                if uid not in changes:
                    changes[uid] = None
            self._commit(gen, changes, full=True)
            with self._state_lock:
                if self._gen is gen and not gen.stop.is_set():
                    self._resource_version = rv
        self._count("lists")

    def resync(self, gen: _Generation) -> None:
        """Ask the CRI again for every running pod (catches restarts and exits)."""
        with self._apply_lock:
            with self._state_lock:
                if not self._synced or self._gen is not gen:
                    return
                pods = [p for p in self._pods.values() if p.considered]
            if not pods:
                return
            index = self._cri_index()
            if index is None:
                return
            changes: dict[str, _Pod | None] = {}
            for pod in pods:
                found = self._resolve(pod, index.get(pod.uid, []), pod.containers)
                if _containers_differ(found, pod.containers):
                    changes[pod.uid] = dataclasses.replace(pod, containers=found)
            if changes:
                self._count("resync_changes")
                self._commit(gen, changes, full=False)

    # ------------------------------------------------------------------ API calls
    def _list_call(self, **kwargs: Any) -> Any:
        ns = self.settings.namespace
        node = self.settings.node_name
        if node:
            kwargs["field_selector"] = f"spec.nodeName={node}"
        if ns:
            return self._api.list_namespaced_pod(ns, _preload_content=False, **kwargs)
        return self._api.list_pod_for_all_namespaces(_preload_content=False, **kwargs)

    def _list(self) -> tuple[list[dict[str, Any]], str]:
        resp = self._list_call(_request_timeout=self._timeout())
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        meta = body.get("metadata") or {}
        return list(body.get("items") or []), str(meta.get("resourceVersion", ""))

    def _watch_once(self, gen: _Generation) -> None:
        """One WATCH request from the current resourceVersion (``gen.events`` counts events).

        Raises :class:`_Gone` on 410 and anything else on connection or stream errors.
        """
        from kubernetes.client.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            ApiException,
        )

        timeout = self.settings.watch_timeout
        try:
            resp = self._list_call(
                watch=True,
                resource_version=self._resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                _request_timeout=(self._timeout()[0], timeout + self.settings.request_timeout),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone(str(exc.reason)) from exc
            raise
        self._count("watches")
        if not gen.set_response(resp):
            _shutdown_response(resp)
            return
        try:
            for line in _lines(resp):
                if gen.stop.is_set():
                    break
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone(str(obj.get("message", "")))
                    raise _WatchError(
                        f"watch error {obj.get('code')}: {obj.get('reason')}: {obj.get('message')}"
                    )
                gen.events += 1
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if kind == "BOOKMARK":
                    self._count("bookmarks")
                self._apply_event(gen, str(kind), obj, str(rv) if rv else None)
        finally:
            with gen.lock:
                gen.response = None
            # never hand a watch connection back to the pool: close it (FIN to the server)
            with contextlib.suppress(Exception):
                resp.close()
            with contextlib.suppress(Exception):
                resp.release_conn()

    def _backoff(self, failures: int) -> float:
        s = self.settings
        delay = min(s.backoff_max, s.backoff_initial * (2.0 ** min(failures, 30)))
        return delay * random.uniform(0.5, 1.0)

    def _watch_loop(self, gen: _Generation) -> None:
        """LIST, then WATCH from the listed version; relist on 410; back off on errors."""
        failures = 0  # consecutive failed or fruitless attempts: drives the backoff
        need_list = True
        while not gen.stop.is_set():
            started = time.monotonic()
            events_before = gen.events
            try:
                if need_list:
                    self._relist(gen)
                    need_list = False
                    continue
                self._watch_once(gen)
                if gen.stop.is_set():
                    break
                # A clean end (the server's timeout): reconnect at once, unless the server
                # keeps closing streams right away without sending anything.
                if gen.events > events_before or time.monotonic() - started >= 1.0:
                    failures = 0
                    continue
                delay = self._backoff(failures)
                failures += 1
            except _Gone as exc:
                if gen.stop.is_set():
                    break
                self._count("relists_gone")
                need_list = True
                if gen.events > events_before:
                    failures = 0
                    log.info("kubernetes watch expired (%s); relisting", _one_line(exc))
                    continue
                # 410 right after a LIST (or again and again): do not spin
                delay = self._backoff(failures)
                failures += 1
                log.info("kubernetes watch expired (%s); relisting in %.2fs", _one_line(exc), delay)
            except Exception as exc:
                if gen.stop.is_set():
                    break
                if gen.events > events_before or time.monotonic() - started >= 5.0:
                    failures = 0  # it worked for a while: start the backoff afresh
                delay = self._backoff(failures)
                failures += 1
                self._count("errors")
                log.warning(
                    "kubernetes %s failed (%s); retrying in %.2fs",
                    "list" if need_list else "watch",
                    _one_line(exc),
                    delay,
                )
            gen.stop.wait(delay)

    def _resync_loop(self, gen: _Generation) -> None:
        interval = self.settings.resync_interval
        if interval <= 0:
            return
        while not gen.stop.wait(interval):
            try:
                self.resync(gen)
            except Exception:  # pragma: no cover - defensive: never kill the thread
                log.exception("kubernetes observer resync failed")


def _lines(resp: Any) -> Iterator[bytes]:
    """Complete, non-empty lines of a streamed (chunked) HTTP response."""
    buf = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield line
    if buf.strip():
        yield buf


# --------------------------------------------------------------------------- the observer


class KubernetesObserver:
    """Containers of the pods of a cluster, a namespace or a node, live.

    ``k8s_endpoint`` is a kubeconfig path, or an ``http(s)://host:port`` URL of an API
    server to talk to directly without authentication (``kubectl proxy``), or ``None``:
    the in-cluster service account when running in a pod, else ``$KUBECONFIG`` /
    ``~/.kube/config``. ``namespace`` scopes the watch itself (``None``: all).
    ``node_name`` (default: ``$SYSHUB_NODE_NAME``, then ``$NODE_NAME``) restricts it to
    the pods scheduled on this node, as a node agent needs; ``None`` means every node.

    ``cri`` is a connected-on-demand CRI client (default: ``CriClient(cri_endpoint)``
    from :mod:`syshub.topology.cri`); ``alt_root`` is where the host's ``/proc`` is
    mounted when running in a container.

    Every copy (:meth:`copy`) shares this observer's watch and CRI client; closing the
    observer closes them for all copies. Thread-safe.
    """

    _core: _PodWatch
    _filter: _Filter

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
        settings = _Settings(
            endpoint=k8s_endpoint,
            namespace=namespace or None,
            node_name=node_name or None,
            alt_root=alt_root,
            cri_endpoint=cri_endpoint,
            resync_interval=resync_interval,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            watch_timeout=int(watch_timeout),
            request_timeout=request_timeout,
            poll_interval=poll_interval,
        )
        self._core = _PodWatch(settings, cri, pid_ns_reader or pid_namespace_inode)
        self._filter = _Filter().narrow(
            None, _label_selector(label_selector), _field_selector(field_selector)
        )
        self._closed = threading.Event()
        self._is_root = True

    # ------------------------------------------------------------------ views
    def copy(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
    ) -> KubernetesObserver:
        """A view of the same watch narrowed to ``namespace`` and the selectors.

        Selectors may be :class:`~syshub.spec.selectors.LabelSelector` /
        :class:`~syshub.spec.selectors.FieldSelector`, selector strings (``"app=demo,tier in
        (a,b)"``, ``"status.phase=Running"``) or dicts (``{"matchLabels": ...,
        "matchExpressions": [...]}``, or plain ``{key: value}``). A copy of a copy must
        satisfy both. No watch or CRI connection is opened.
        """
        view = object.__new__(KubernetesObserver)
        view._core = self._core
        view._filter = self._filter.narrow(
            namespace or None, _label_selector(label_selector), _field_selector(field_selector)
        )
        view._closed = threading.Event()
        view._is_root = False
        return view

    @property
    def namespace(self) -> str | None:
        """The namespace the shared watch is scoped to (``None``: all)."""
        return self._core.settings.namespace

    @property
    def node_name(self) -> str | None:
        return self._core.settings.node_name

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
        live = self._core.current(self._filter)
        if live is not None:
            return live
        return self._core.snapshot(self._filter)

    def run(self, emit: EmitFn, stop: threading.Event) -> None:
        """START for every selected container, then START/STOP as they change.

        Blocks until ``stop`` is set or the observer is closed; ``emit`` is called from
        this thread. Connection problems are retried with backoff and never raised; an
        unusable configuration raises :class:`~syshub.errors.KubernetesError` at once.
        Exceptions raised by ``emit`` are logged and do not end the run.
        """
        core = self._core
        core.ensure_client()
        sub = core.subscribe(self._filter)
        poll = core.settings.poll_interval
        try:
            while not (stop.is_set() or self._closed.is_set() or core.closed):
                for event in sub.take(poll):
                    if stop.is_set():
                        break
                    try:
                        emit(event)
                    except Exception:
                        log.exception("container event callback failed for %s", event)
        finally:
            core.unsubscribe(sub)

    def close(self) -> None:
        """End this view's runs; on the observer itself, also the shared watch and CRI."""
        self._closed.set()
        if self._is_root:
            self._core.close()

    def __enter__(self) -> KubernetesObserver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        f = self._filter
        parts = [f"namespace={self.namespace!r}", f"node={self.node_name!r}"]
        if f.namespaces:
            parts.append(f"view_namespaces={list(f.namespaces)!r}")
        if f.labels:
            parts.append(f"labels={[str(s) for s in f.labels]!r}")
        if f.fields:
            parts.append(f"fields={[str(s) for s in f.fields]!r}")
        return f"KubernetesObserver({', '.join(parts)})"
