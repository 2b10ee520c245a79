"""Status writes of the per-node Trace controller at the edges, on two "nodes" (two Hubs on
the real kernel probe, each with its controller) against the local API server, with pods
really running in the test containerd:

* the overall status has one writer in the normal case: the 409 conflicts of a Trace's whole
  life (start, counters, completion) on two nodes are counted by the API server; each node's
  entry is owned (server-side apply) by that node's field manager alone;
* a Trace matching no pod anywhere does not stay Pending: one node reports it (Running with
  0 containers, an Event says no pod matches) and it completes after its duration;
* a Trace selecting more kernel keys than a node's filter-key limit allows gets a Warning
  Event and a status error on that node (the limit is the Hub's ``max_filter_keys``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("kubernetes")

from support.k8s_apiserver import FakeApiServer
from support.k8s_cluster import (
    TRACES,
    ClusterPod,
    Node,
    create_trace,
    entries,
    events,
    get_trace,
    install_crds,
    trace_manifest,
    wait_until,
)

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv

pytestmark = [pytest.mark.bpf, pytest.mark.containerd]

NODES = ("node-s", "node-t")


class Pair:
    def __init__(self, api: FakeApiServer, nodes: dict[str, Node], pods: dict[str, ClusterPod]):
        self.api = api
        self.nodes = nodes
        self.pods = pods

    def no_filters(self) -> bool:
        return all(not n.filter_namespaces() for n in self.nodes.values())


@pytest.fixture(scope="module")
def pair(containerd: ContainerdEnv) -> Iterator[Pair]:
    api = FakeApiServer().start()
    install_crds(api)
    nodes: dict[str, Node] = {}
    pods: dict[str, ClusterPod] = {}
    try:
        for n in NODES:
            pods[n] = ClusterPod(containerd, api, f"stat-{n[-1]}", n, {"app": "web"})
            nodes[n] = Node(api, containerd, n)
            nodes[n].start_controller()
        yield Pair(api, nodes, pods)
    finally:
        for node in nodes.values():
            node.close()
        for pod in pods.values():
            pod.remove()
        api.close()


def test_overall_status_has_one_writer(pair: Pair) -> None:
    api = pair.api
    before = api.conflicts
    create_trace(api, trace_manifest("one-writer", ["openat"], duration="5s"))

    def complete() -> bool:
        status = get_trace(api, "one-writer").get("status") or {}
        return bool(status.get("state") == "Complete")

    assert wait_until(complete, 20), get_trace(api, "one-writer").get("status")
    status = get_trace(api, "one-writer")["status"]
    assert set(status["nodes"]) == set(NODES)
    assert all(e["state"] == "Complete" for e in status["nodes"].values())
    assert status["nodeCount"] == 2
    conflicts = api.conflicts - before
    print(f"\n409 conflicts over one Trace's life on two nodes: {conflicts}")
    assert conflicts <= 1, conflicts
    # each entry is applied (server-side apply) by its node's own field manager, and only it
    owners = api.owners(TRACES, "default", "one-writer")
    for n in NODES:
        fields = owners[(f"syshub-agent-{n}", "Apply", "status")]
        assert fields and all(f[:3] == ("status", "nodes", n) for f in fields), fields
    assert api.apply_conflicts == 0
    api.delete_object(TRACES, "default", "one-writer")
    assert wait_until(pair.no_filters, 10)


def test_trace_matching_no_pod_runs_then_completes(pair: Pair) -> None:
    api = pair.api
    manifest = trace_manifest("nobody", ["openat"], duration="4s")
    manifest["spec"]["labelSelector"] = {"matchLabels": {"app": "no-such-app"}}
    create_trace(api, manifest)

    def state() -> object:
        return (get_trace(api, "nobody").get("status") or {}).get("state")

    assert wait_until(lambda: state() == "Running", 10), get_trace(api, "nobody")
    status = get_trace(api, "nobody")["status"]
    # one node stands in for all (the per-node delay), with 0 containers
    assert status["nodeCount"] == len(status["nodes"]) >= 1, status
    for entry in status["nodes"].values():
        assert entry["state"] == "Running" and entry["containers"] == 0, entry
    said = events(api, "nobody", "NoMatchingPods")
    assert said and all(e["type"] == "Normal" for e in said), events(api, "nobody")
    assert {e["source"]["host"] for e in said} == set(status["nodes"])
    assert not events(api, "nobody", "Started")
    # and it completes after its duration, like any other trace
    assert wait_until(lambda: state() == "Complete", 15), get_trace(api, "nobody")["status"]
    status = get_trace(api, "nobody")["status"]
    assert status["completionTime"] and status["startTime"]
    assert all(e["state"] == "Complete" for e in status["nodes"].values())
    print(f"\nno-match trace reported by {sorted(status['nodes'])}")
    api.delete_object(TRACES, "default", "nobody")


def test_no_match_stand_in_steps_back_for_real_entries(pair: Pair) -> None:
    """A stand-in entry stays, but a node whose pod matches later reports as usual."""
    api = pair.api
    manifest = trace_manifest("later", ["openat"])
    manifest["spec"]["labelSelector"] = {"matchLabels": {"app": "later"}}
    create_trace(api, manifest)
    assert wait_until(lambda: entries(api, "later"), 10)
    stand_ins = set(entries(api, "later"))
    pod = ClusterPod(pair.pods[NODES[0]].env, api, "later-pod", NODES[1], {"app": "later"})
    try:
        assert wait_until(lambda: entries(api, "later").get(NODES[1], {}).get("containers") == 1)
        count = len(stand_ins | {NODES[1]})
        assert wait_until(lambda: get_trace(api, "later")["status"].get("nodeCount") == count)
        assert get_trace(api, "later")["status"]["state"] == "Running"
    finally:
        api.delete_object(TRACES, "default", "later")
        pod.remove()
    assert wait_until(pair.no_filters, 10)
