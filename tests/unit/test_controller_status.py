"""The controller's pure parts: the overall status derived from the node entries, the patches
(own entry only; overall with a resourceVersion precondition), and the watch sink's relist
diff (a Trace deleted while the watch was down is reported as DELETED)."""

from __future__ import annotations

import queue
from typing import Any

from syshub.agent.controller.status import (
    derive,
    entry_patch,
    job_id_for,
    overall_patch,
)
from syshub.agent.controller.watcher import Item, TraceSink
from syshub.topology.kubernetes.watch import Generation


def _obj(nodes: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "default", "resourceVersion": "7"},
        "status": {**(status or {}), "nodes": nodes},
    }


def test_derive_states() -> None:
    assert derive({})["state"] == "Pending"
    run = {"state": "Running", "startTime": "2026-01-01T00:00:02Z", "jobID": "t-1"}
    done = {
        "state": "Complete",
        "startTime": "2026-01-01T00:00:01Z",
        "completionTime": "2026-01-01T00:00:09Z",
        "jobID": "t-1",
    }
    failed = {"state": "Failed", "lastError": "unknown syscall 'x'"}
    got = derive({"a": run, "b": done})
    assert got["state"] == "Running" and got["completionTime"] is None
    assert got["startTime"] == "2026-01-01T00:00:01Z" and got["nodeCount"] == 2
    assert derive({"a": done, "b": {**done, "completionTime": "2026-01-01T00:00:10Z"}}) == {
        "state": "Complete",
        "nodeCount": 2,
        "startTime": "2026-01-01T00:00:01Z",
        "completionTime": "2026-01-01T00:00:10Z",
        "jobID": "t-1",
        "message": None,
    }
    assert derive({"a": done, "b": failed})["state"] == "Complete"
    only_failed = derive({"a": failed, "b": failed})
    assert only_failed["state"] == "Failed" and "unknown syscall" in only_failed["message"]
    swoll = derive({"a": done}, "tools.swoll.criticalstack.com")
    assert swoll["job"] == "t-1" and swoll["completeTime"] and "jobID" not in swoll


def test_patches() -> None:
    assert entry_patch("n1", {"state": "Running"}) == {
        "status": {"nodes": {"n1": {"state": "Running"}}}
    }
    obj = _obj({"n1": {"state": "Running", "startTime": "2026-01-01T00:00:00Z"}})
    patch = overall_patch(obj, "syshub.io")
    assert patch is not None
    assert patch["metadata"] == {"resourceVersion": "7"}  # the precondition
    assert patch["status"]["state"] == "Running" and patch["status"]["nodeCount"] == 1
    assert "nodes" not in patch["status"]  # never touches another node's entry
    settled = _obj(obj["status"]["nodes"], {**patch["status"]})
    assert overall_patch(settled, "syshub.io") is None


def test_job_id_is_stable_and_a_label_value() -> None:
    uid = "0f8e7d6c-1111-2222-3333-444455556666"
    assert job_id_for("web", uid) == job_id_for("web", uid) == "web-0f8e7d6c"
    assert len(job_id_for("x" * 80, uid)) <= 63


def test_sink_relist_reports_deleted_traces() -> None:
    work: queue.Queue[Item] = queue.Queue()
    stopped: list[str] = []  # the watch thread stops a deleted Trace's job at once
    sink = TraceSink("syshub.io", work, lambda obj: stopped.append(obj["metadata"]["name"]))
    gen = Generation()
    a = {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "5"}}
    b = {"metadata": {"name": "b", "namespace": "n", "resourceVersion": "6"}}
    sink.relist(gen, [a, b], "6")
    sink.apply_event(gen, "BOOKMARK", {"metadata": {"resourceVersion": "9"}}, "9")
    assert sink.resource_version == "9"
    drained = [work.get_nowait() for _ in range(work.qsize())]
    assert [(k, o and o["metadata"]["name"]) for k, _, o in drained] == [
        ("UPSERT", "a"),
        ("UPSERT", "b"),
        ("SYNCED", None),
    ]
    sink.relist(gen, [b], "12")  # `a` went while the watch was down
    drained = [work.get_nowait() for _ in range(work.qsize())]
    assert ("DELETED", "a") in [(k, o and o["metadata"]["name"]) for k, _, o in drained]
    assert stopped == ["a"]
    assert sink.resource_version == "12"
    sink.apply_event(gen, "DELETED", b, "13")
    assert stopped == ["a", "b"] and work.get_nowait()[0] == "DELETED"
