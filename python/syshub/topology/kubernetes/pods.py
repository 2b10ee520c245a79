"""Pod state of the shared watch, and what each subscriber has been told about it."""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any, Final

from syshub.spec.selectors import FieldSelector
from syshub.topology.filter import ContainerFilter
from syshub.topology.model import Container, ContainerEvent, ContainerEventKind
from syshub.topology.resolve import PodRef

_RUNNING: Final = "Running"


def status_signature(pod: Mapping[str, Any]) -> tuple[object, ...]:
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
class Pod:
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
    ) -> Pod:
        meta = raw.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        fields = {**FieldSelector.pod_fields(raw), "metadata.uid": uid}
        node = fields["spec.nodeName"]
        phase = fields["status.phase"]
        considered = phase == _RUNNING and (node_name is None or node == node_name)
        return Pod(
            uid=uid,
            name=fields["metadata.name"],
            namespace=fields["metadata.namespace"],
            node=node,
            phase=phase,
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            fields=fields,
            signature=status_signature(raw),
            considered=considered,
            containers=dict(containers) if considered else {},
        )

    def ref(self) -> PodRef:
        return PodRef(self.name, self.namespace, self.uid, self.labels, self.node)

    def admitted_by(self, flt: ContainerFilter) -> bool:
        return flt.admits(self.namespace, self.labels, self.fields)


def same_process(a: Container, b: Container) -> bool:
    return a.id == b.id and a.pid == b.pid and a.pid_ns == b.pid_ns


def containers_differ(a: Mapping[str, Container], b: Mapping[str, Container]) -> bool:
    if a.keys() != b.keys():
        return True
    return any(not same_process(a[k], b[k]) or a[k] != b[k] for k in a)


#: Queued after a subscriber's initial START events (its ``on_synced`` point).
SYNCED: Final = None


class Subscription:
    """One running ``run`` of a view: what it was told, and what it still has to be told."""

    def __init__(self, flt: ContainerFilter) -> None:
        self.filter = flt
        self.reported: dict[str, dict[str, Container]] = {}
        self.queue: collections.deque[ContainerEvent | None] = collections.deque()
        self.cond = threading.Condition()
        self.synced = False

    def diff(self, uid: str, pod: Pod | None) -> list[ContainerEvent]:
        """Events turning what this subscriber knows about ``uid`` into ``pod``'s state.

        Called with the watch's state lock held, so events of one pod are queued in order.
        """
        new: Mapping[str, Container] = (
            pod.containers if pod is not None and pod.admitted_by(self.filter) else {}
        )
        old = self.reported.get(uid, {})
        events: list[ContainerEvent] = []
        kept: dict[str, Container] = {}
        for cid, c in old.items():
            n = new.get(cid)
            if n is None or not same_process(n, c):
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

    def push(self, events: list[ContainerEvent], *, initial: bool = False) -> None:
        """Queue events; ``initial``: they complete the subscriber's initial state (the
        first time only, a :data:`SYNCED` marker follows them)."""
        marker = initial and not self.synced
        if marker:
            self.synced = True
        if events or marker:
            with self.cond:
                self.queue.extend(events)
                if marker:
                    self.queue.append(SYNCED)
                self.cond.notify_all()

    def take(self, timeout: float) -> list[ContainerEvent | None]:
        with self.cond:
            if not self.queue:
                self.cond.wait(timeout)
            out = list(self.queue)
            self.queue.clear()
            return out

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()
