"""The state shared by a KubernetesObserver and all its views: one watch, one CRI client.

Pods come from the watch (:mod:`.watch`); each running pod's containers are resolved
through the node's CRI runtime (:class:`~syshub.topology.resolve.Resolver`). Every
change is committed under one lock and diffed per subscriber (:mod:`.pods`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from syshub.errors import KubernetesError
from syshub.topology.cri.observer import new_client
from syshub.topology.filter import ContainerFilter
from syshub.topology.kubernetes.api import PodApi, Scope, log, one_line
from syshub.topology.kubernetes.pods import Pod, Subscription, containers_differ
from syshub.topology.kubernetes.watch import Backoff, Generation, watch_loop
from syshub.topology.model import Container, ContainerEvent
from syshub.topology.resolve import LABEL_POD_UID, CriContainer, CriReader, PidNsReader, Resolver

#: The CRI socket used when none is given (containerd's default).
DEFAULT_CRI_ENDPOINT: Final = "unix:///run/containerd/containerd.sock"


#: The part of :class:`syshub.topology.cri.client.CriClient` the observer uses.
CriClientLike = CriReader


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    scope: Scope
    alt_root: str
    cri_endpoint: str | None
    resync_interval: float
    backoff: Backoff
    poll_interval: float


class PodWatch:
    """One watch and one CRI client for an observer and all its views."""

    def __init__(
        self, settings: Settings, cri: CriClientLike | None, pid_ns_reader: PidNsReader
    ) -> None:
        self.settings = settings
        self.api = PodApi(settings.scope)
        self._cri = cri
        self._owns_cri = cri is None
        self._cri_connected = False
        self._resolver = Resolver(
            lambda cid: self.ensure_cri().container_status(cid), settings.alt_root, pid_ns_reader
        )
        self._client_lock = threading.Lock()
        # _apply_lock serialises every change (watch events, relists, resyncs) including
        # their CRI look-ups; _state_lock guards the committed state and the subscribers.
        self._apply_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pods: dict[str, Pod] = {}
        self._subs: set[Subscription] = set()
        self._gen: Generation | None = None
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

    def count(self, what: str) -> None:
        with self._state_lock:
            self._counters[what] += 1

    def ensure_client(self) -> None:
        if self._closed.is_set():
            raise KubernetesError("the Kubernetes observer is closed")
        self.api.ensure_client()

    def ensure_cri(self) -> CriClientLike:
        with self._client_lock:
            if self._cri is None:
                endpoint = self.settings.cri_endpoint or DEFAULT_CRI_ENDPOINT
                timeout = min(self.settings.scope.request_timeout, 10.0)
                self._cri = new_client(endpoint, timeout=timeout)
            if not self._cri_connected:
                self._cri.connect()
                self._cri_connected = True
            return self._cri

    def connect(self) -> None:
        self.ensure_client()
        self.api.check()
        self.ensure_cri()

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
        self.api.close()
        with self._client_lock:
            if self._cri is not None and self._owns_cri:
                with contextlib.suppress(Exception):
                    self._cri.close()
            self._cri_connected = False

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, flt: ContainerFilter) -> Subscription:
        sub = Subscription(flt)
        with self._state_lock:
            if self._closed.is_set():
                raise KubernetesError("the Kubernetes observer is closed")
            self._subs.add(sub)
            if self._synced:
                events: list[ContainerEvent] = []
                for uid, pod in self._pods.items():
                    events.extend(sub.diff(uid, pod))
                sub.push(events, initial=True)
            if self._gen is None:
                self._start_generation()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        gen: Generation | None = None
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
        gen = Generation()
        self._gen = gen
        self._synced = False
        gen.threads = [
            threading.Thread(
                target=watch_loop,
                args=(self.api, gen, self, self.settings.backoff),
                name="syshub-k8s-watch",
                daemon=True,
            ),
            threading.Thread(
                target=self._resync_loop, args=(gen,), name="syshub-k8s-resync", daemon=True
            ),
        ]
        for t in gen.threads:
            t.start()

    def current(self, flt: ContainerFilter) -> list[Container] | None:
        """Matching containers from the live cache, or None when the cache is not live."""
        with self._state_lock:
            if self._gen is None or not self._synced:
                return None
            pods = [p for p in self._pods.values() if p.admitted_by(flt)]
            return [c for pod in pods for c in pod.containers.values()]

    def snapshot(self, flt: ContainerFilter) -> list[Container]:
        """One LIST and one CRI listing, without a watch (for ``containers()`` when idle)."""
        self.ensure_client()
        self.ensure_cri()  # CriError if the runtime cannot be reached
        try:
            items, _ = self.api.list()
        except Exception as exc:
            host = self.api.host()
            raise KubernetesError(f"cannot list pods at {host}: {one_line(exc)}") from exc
        index = self._cri_index()
        out: list[Container] = []
        for raw in items:
            pod = Pod.from_dict(raw, self.settings.scope.node_name, {})
            if not pod.considered or not pod.admitted_by(flt):
                continue
            found = self._resolve(pod, index.get(pod.uid, []) if index else [], {})
            out.extend(found.values())
        return out

    # ------------------------------------------------------------------ committing
    def _commit(self, gen: Generation, changes: Mapping[str, Pod | None], full: bool) -> None:
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
                sub.push(events, initial=full)

    # ------------------------------------------------------------------ CRI
    def _cri_index(self) -> dict[str, list[CriContainer]] | None:
        """All running CRI containers grouped by pod uid (one CRI call); None on error."""
        try:
            listed = self.ensure_cri().list_containers(state_running_only=True)
        except Exception as exc:
            log.warning("CRI ListContainers failed: %s", one_line(exc))
            self.count("cri_errors")
            return None
        index: dict[str, list[CriContainer]] = {}
        for c in listed:
            uid = c.labels.get(LABEL_POD_UID)
            if uid:
                index.setdefault(uid, []).append(c)
        return index

    def _cri_for_pod(self, uid: str) -> list[CriContainer] | None:
        try:
            listed = self.ensure_cri().list_containers(
                state_running_only=True, label_selector={LABEL_POD_UID: uid}
            )
        except Exception as exc:
            log.warning("CRI ListContainers for pod %s failed: %s", uid, one_line(exc))
            self.count("cri_errors")
            return None
        return [c for c in listed if c.labels.get(LABEL_POD_UID) == uid]

    def _resolve(
        self, pod: Pod, listed: Sequence[CriContainer], previous: Mapping[str, Container]
    ) -> dict[str, Container]:
        """Containers of ``pod`` from the CRI listing, reusing still-living known ones."""
        out: dict[str, Container] = {}
        for c in listed:
            prev = previous.get(c.id)
            if prev is not None and self._resolver.alive(prev):
                if prev.pod_labels != pod.labels or prev.pod != pod.name:
                    prev = dataclasses.replace(prev, pod=pod.name, pod_labels=pod.labels)
                out[c.id] = prev
                continue
            try:
                found = self._resolver.resolve(c, pod.ref())
            except Exception as exc:
                log.debug("CRI ContainerStatus %s failed: %s", c.id, one_line(exc))
                continue
            if found is not None:
                out[c.id] = found
        return out

    # ------------------------------------------------------------------ applying changes
    def _pod_state(
        self,
        raw: Mapping[str, Any],
        index: Mapping[str, Sequence[CriContainer]] | None,
        force_cri: bool,
    ) -> Pod:
        """The new state of one pod; asks the CRI only when something may have changed."""
        bare = Pod.from_dict(raw, self.settings.scope.node_name, {})
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
        listed: Sequence[CriContainer] | None = (
            index.get(bare.uid, []) if index is not None else self._cri_for_pod(bare.uid)
        )
        if listed is None:  # CRI unavailable: keep what we knew; the resync retries
            return dataclasses.replace(bare, containers=dict(previous))
        return dataclasses.replace(bare, containers=self._resolve(bare, listed, previous))

    def _advance(self, gen: Generation, rv: str) -> None:
        with self._state_lock:
            if self._gen is gen and not gen.stop.is_set():
                self._resource_version = rv

    def apply_event(self, gen: Generation, kind: str, raw: dict[str, Any], rv: str | None) -> None:
        """Apply one watch event (a BOOKMARK only advances the resourceVersion)."""
        uid = str((raw.get("metadata") or {}).get("uid", ""))
        with self._apply_lock:
            if uid and kind == "DELETED":
                self._commit(gen, {uid: None}, full=False)
            elif uid and kind in ("ADDED", "MODIFIED"):
                self._commit(gen, {uid: self._pod_state(raw, None, force_cri=False)}, full=False)
            if rv:
                self._advance(gen, rv)

    def relist(self, gen: Generation, items: list[dict[str, Any]], rv: str) -> None:
        with self._apply_lock:
            index = self._cri_index()
            changes: dict[str, Pod | None] = {}
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
            self._advance(gen, rv)
        self.count("lists")

    def resync(self, gen: Generation) -> None:
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
            changes: dict[str, Pod | None] = {}
            for pod in pods:
                found = self._resolve(pod, index.get(pod.uid, []), pod.containers)
                if containers_differ(found, pod.containers):
                    changes[pod.uid] = dataclasses.replace(pod, containers=found)
            if changes:
                self.count("resync_changes")
                self._commit(gen, changes, full=False)

    def _resync_loop(self, gen: Generation) -> None:
        interval = self.settings.resync_interval
        if interval <= 0:
            return
        while not gen.stop.wait(interval):
            try:
                self.resync(gen)
            except Exception:  # pragma: no cover - defensive: never kill the thread
                log.exception("kubernetes observer resync failed")
