"""The controller's pure status helpers added for one overall writer, the CRI state of a
run and entry keys that are over (python/syshub/agent/controller/status.py, runs.py)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("kubernetes")

from syshub.agent.controller.runs import TraceRun
from syshub.agent.controller.status import entry_patch, spread, writer_rank


def _obj(uid: str, *nodes: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "resourceVersion": "7"},
        "status": {"nodes": {n: {"state": "Running"} for n in nodes}},
    }


def test_one_writer_per_trace_the_same_on_every_node() -> None:
    nodes = [f"node-{i}" for i in range(20)]
    obj = _obj("3f1c", *nodes)
    ranks = {n: writer_rank(obj, n) for n in nodes}
    assert sorted(r for r in ranks.values() if r is not None) == list(range(20))
    assert writer_rank(obj, "node-absent") is None  # no entry: never writes overall
    # another Trace: usually another writer (the work is spread over the nodes)
    writers = set()
    for uid in ("a", "b", "c", "d", "e", "f", "g", "h"):
        o = _obj(uid, *nodes)
        writers.add(next(n for n in nodes if writer_rank(o, n) == 0))
    assert len(writers) > 1
    assert 0.0 <= spread("x", "n") < 1.0 and spread("x", "n") == spread("x", "n")


def test_writer_leaves_and_comes() -> None:
    obj = _obj("u1", "a", "b", "c")
    first = next(n for n in "abc" if writer_rank(obj, n) == 0)
    rest = [n for n in "abc" if n != first]
    left = _obj("u1", *rest)  # its entry gone: the next one is the writer
    assert sorted(writer_rank(left, n) for n in rest) == [0, 1]  # type: ignore[type-var]


def test_entry_patch_removes_keys_that_are_over() -> None:
    old = {"state": "Running", "lastError": "x"}
    assert entry_patch("n", {"state": "Running"}, old) == {
        "status": {"nodes": {"n": {"state": "Running", "lastError": None}}}
    }
    assert entry_patch("n", {"state": "Running"}) == {
        "status": {"nodes": {"n": {"state": "Running"}}}
    }


def test_cri_outages_are_counted_once_each() -> None:
    run = TraceRun("syshub.io", "default", "t", "uid", "n", {})
    assert run.set_cri(None) is False
    assert run.set_cri("no such socket") is True
    assert run.set_cri("nothing is listening") is False  # the same outage, a new reason
    assert run.cri_error == "nothing is listening" and run.cri_outages == 1
    assert run.set_cri(None) is True
    assert run.set_cri("again") is True and run.cri_outages == 2
