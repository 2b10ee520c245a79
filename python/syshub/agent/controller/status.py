"""Trace status without write conflicts: pure functions.

Each agent owns one key, ``status.nodes[<its node>]`` (a
:class:`~syshub.spec.crd.NodeStatus`), and writes it with server-side apply under its own
field manager ``syshub-agent-<node>`` (:func:`entry_status`, forced: the entry is that
agent's alone), naming only that key, so two agents never overwrite each other whatever the
cluster size; a key it leaves out is removed by the apply. The overall
fields (``state``, ``startTime``, ``completionTime``, ``jobID``, ``nodeCount``, ``message``)
are a function of the entries (:func:`derive`) and are written when the stored ones differ,
with the object's resourceVersion as a precondition, so a write from a stale view is refused
(409) instead of winning, and the next watch event re-derives.

One writer for the overall fields in the normal case, without a coordinator: the nodes with
an entry are ranked by a hash of (object uid, node) (:func:`writer_rank`; a different
order per Trace spreads the work); rank 0 writes at once, rank ``r`` only when the stored
fields have stayed wrong for ``r`` takeover periods (its writer is gone, or slow), so a node
that leaves never blocks the status and nodes that come are ranked in. A 409 is not retried:
the watch brings the newer object and the derivation starts again from it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from syshub.spec.model import SWOLL_API_GROUP

RUNNING: Final = "Running"
PENDING: Final = "Pending"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"
FINISHED: Final = frozenset({COMPLETE, FAILED})

#: The overall status keys, ours -> swoll's spelling.
_SWOLL_KEYS: Final = {"jobID": "job", "completionTime": "completeTime"}


def now_text() -> str:
    """Now as Kubernetes writes times (RFC 3339, UTC, seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_id_for(name: str, uid: str) -> str:
    """The job id of a Trace object on every node and across restarts: ``<name>-<uid8>``."""
    stem = name[:54].rstrip("-.") or "trace"
    tail = "".join(c for c in uid if c.isalnum())[:8] or "0"
    return f"{stem}-{tail}"


def key_for(group: str, key: str) -> str:
    """``key`` of the overall status as the trace's API group spells it."""
    return _SWOLL_KEYS.get(key, key) if group == SWOLL_API_GROUP else key


def node_entries(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.nodes`` of a Trace object (entries that are not objects are skipped)."""
    status = obj.get("status")
    nodes = status.get("nodes") if isinstance(status, Mapping) else None
    if not isinstance(nodes, Mapping):
        return {}
    return {str(k): dict(v) for k, v in nodes.items() if isinstance(v, Mapping)}


def derive(nodes: Mapping[str, Mapping[str, Any]], group: str = "") -> dict[str, Any]:
    """The overall status the entries imply.

    No entry: Pending. Any entry Running or Pending: Running (Pending if none runs). Every
    entry finished: Failed when all failed, else Complete, completed when the last did.
    """
    states = [str(e.get("state", PENDING)) for e in nodes.values()]
    if not states:
        state = PENDING
    elif any(s not in FINISHED for s in states):
        state = RUNNING if RUNNING in states else PENDING
    elif all(s == FAILED for s in states):
        state = FAILED
    else:
        state = COMPLETE
    starts = sorted(str(e["startTime"]) for e in nodes.values() if e.get("startTime"))
    ends = sorted(str(e["completionTime"]) for e in nodes.values() if e.get("completionTime"))
    jobs = sorted({str(e["jobID"]) for e in nodes.values() if e.get("jobID")})
    out: dict[str, Any] = {
        "state": state,
        "nodeCount": len(states),
        "startTime": starts[0] if starts else None,
        "completionTime": ends[-1] if state in FINISHED and ends else None,
        "jobID": jobs[0] if jobs else None,
        "message": None,
    }
    if state == FAILED:
        errors = sorted(str(e.get("lastError")) for e in nodes.values() if e.get("lastError"))
        out["message"] = errors[0] if errors else None
    return {key_for(group, k): v for k, v in out.items()}


def overall_patch(obj: Mapping[str, Any], group: str) -> dict[str, Any] | None:
    """A merge patch that makes the overall status what the entries imply, with the
    object's resourceVersion as its precondition; None when it already is."""
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    want = derive(node_entries(obj), group)
    change = {k: v for k, v in want.items() if status.get(k) != v}
    if not change:
        return None
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return {"metadata": {"resourceVersion": rv}, "status": change}


def entry_patch(
    node: str, entry: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The merge patch of one node's entry (nothing else); keys of ``previous`` that the
    entry no longer has are removed (``null``), e.g. a ``lastError`` that is over."""
    body: dict[str, Any] = dict(entry)
    for key in previous or {}:
        if key not in body:
            body[key] = None
    return {"status": {"nodes": {node: body}}}


def field_manager(node: str) -> str:
    """The field manager of this node's agent (its entry's owner under server-side apply)."""
    return f"syshub-agent-{node}"[:128]


def entry_status(node: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The status this node applies: its own entry, nothing else."""
    return {"nodes": {node: dict(entry)}}


def spread(uid: str, node: str) -> float:
    """A number in [0, 1) fixed for (object, node), the same on every node and restart."""
    return zlib.crc32(f"{uid}/{node}".encode()) / 2**32


def writer_rank(obj: Mapping[str, Any], node: str) -> int | None:
    """This node's place among the writers of the overall status (0: the writer), None when
    the node has no entry (it does not write the overall fields)."""
    nodes = node_entries(obj)
    if node not in nodes:
        return None
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    order = sorted(nodes, key=lambda n: (spread(uid, n), n))
    return order.index(node)
