"""The per-node Trace controller on one machine playing two nodes: two Hubs on the real
kernel probe, each with a KubernetesObserver narrowed to its node and a Controller, the local
API server (real ``kubernetes`` client) with the Trace CRDs, pods really running in the test
containerd, one on each node.

Proved here: a Trace selecting pods on both nodes runs on both, each node's status entry
appears and none overwrites the other (each entry's final counters are exactly its Hub's),
Started/Completed Events; completion after ``duration`` on every node; deleting a Trace
releases the kernel filters on both nodes (the time is measured); an agent restart resumes
the Traces that exist; a Trace deleted while the API server was down is cleaned up by the
relist after 410; a malformed Trace gets a Warning Event and a Failed entry, never a crash;
``syshub run`` follows the events of both nodes through the agents' pod logs.
"""

from __future__ import annotations

import io
import json
import time
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

NODES = ("node-a", "node-b")


class Cluster:
    def __init__(self, api: FakeApiServer, nodes: dict[str, Node], pods: dict[str, ClusterPod]):
        self.api = api
        self.nodes = nodes
        self.pods = pods  # node name -> its web pod

    def running_everywhere(self, name: str) -> bool:
        e = entries(self.api, name)
        return all(
            e.get(n, {}).get("state") == "Running" and e[n].get("containers") == 1 for n in NODES
        )

    def traced_everywhere(self) -> bool:
        return all(self.pods[n].pid_ns in self.nodes[n].filter_namespaces() for n in NODES)

    def no_filters(self) -> bool:
        return all(not self.nodes[n].filter_namespaces() for n in NODES)

    def job_lines(self, job: str) -> dict[str, list[dict[str, object]]]:
        out: dict[str, list[dict[str, object]]] = {n: [] for n in NODES}
        for n in NODES:
            for line in self.nodes[n].log.lines():
                doc = json.loads(line)
                if doc.get("job") == job:
                    out[n].append(doc)
        return out


@pytest.fixture(scope="module")
def cluster(containerd: ContainerdEnv) -> Iterator[Cluster]:
    api = FakeApiServer().start()
    install_crds(api)
    nodes: dict[str, Node] = {}
    pods: dict[str, ClusterPod] = {}
    try:
        for n in NODES:
            pods[n] = ClusterPod(containerd, api, f"web-{n[-1]}", n, {"app": "web"})
            nodes[n] = Node(api, containerd, n)
            nodes[n].start_controller(groups=("syshub", "swoll"))
        yield Cluster(api, nodes, pods)
    finally:
        for node in nodes.values():
            node.close()
        for pod in pods.values():
            pod.remove()
        api.close()


def _job(cluster: Cluster, name: str) -> str:
    from syshub.agent.controller.status import job_id_for

    obj = get_trace(cluster.api, name)
    return job_id_for(name, obj["metadata"]["uid"])


def test_trace_runs_on_both_nodes_and_completes(cluster: Cluster) -> None:
    api = cluster.api
    create_trace(api, trace_manifest("both", ["openat"], duration="4s"))
    assert wait_until(lambda: cluster.running_everywhere("both")), entries(api, "both")
    assert cluster.traced_everywhere()
    job = _job(cluster, "both")
    # each node prints its own pod's events, labelled with the trace
    lines = wait_until(
        lambda: (got := cluster.job_lines(job)) and all(got.values()) and got, timeout=10
    )
    assert lines, "no JSON lines from both agents"
    for n in NODES:
        pods = {doc["event"]["container"]["pod"] for doc in lines[n]}  # type: ignore[index]
        assert pods == {cluster.pods[n].name}, (n, pods)
        assert {doc["trace"] for doc in lines[n]} == {"default/both"}
    started = {e["source"]["host"] for e in events(api, "both", "Started")}
    assert started == set(NODES)

    # completion after the duration, on every node, derived into the overall state
    assert wait_until(lambda: get_trace(api, "both")["status"].get("state") == "Complete", 15), (
        get_trace(api, "both")["status"]
    )
    status = get_trace(api, "both")["status"]
    assert status["nodeCount"] == 2 and status["completionTime"] and status["startTime"]
    assert status["jobID"] == job
    assert wait_until(cluster.no_filters, 5)
    for n in NODES:
        e = status["nodes"][n]
        assert e["state"] == "Complete" and e["completionTime"], e
        assert e["matched"] > 0
        assert e["matched"] == e["delivered"] + e["dropped"] + e["sampledOut"]
        # the entry holds this node's last counters: nobody overwrote it
        js = cluster.nodes[n].hub.stats().jobs[job]
        assert (e["matched"], e["delivered"]) == (js.matched, js.delivered), (n, e, js)
    completed = {e["source"]["host"] for e in events(api, "both", "Completed")}
    assert completed == set(NODES)
    api.delete_object(TRACES, "default", "both")


def test_delete_removes_filters_on_both_nodes(cluster: Cluster) -> None:
    api = cluster.api
    create_trace(api, trace_manifest("gone", ["openat", "connect"]))
    assert wait_until(lambda: cluster.running_everywhere("gone")), entries(api, "gone")
    assert wait_until(cluster.traced_everywhere)
    t0 = time.monotonic()
    api.delete_object(TRACES, "default", "gone")
    assert wait_until(cluster.no_filters, 10, step=0.002)
    elapsed = time.monotonic() - t0
    stops = []
    for n in NODES:
        ctl = cluster.nodes[n].controller
        assert ctl is not None and wait_until(lambda ctl=ctl: ctl.delete_seconds, 5)
        stops.append(f"{n} {ctl.delete_seconds[-1] * 1000:.1f} ms")
    print(f"\ndelete -> empty filter maps on both nodes: {elapsed * 1000:.1f} ms")
    print(f"  (the controllers' job stop, watch event to job deleted: {', '.join(stops)})")
    assert elapsed < 3.0
    for n in NODES:
        assert cluster.nodes[n].hub.desired_filters() == {}


def test_restart_resumes_existing_traces(cluster: Cluster) -> None:
    api = cluster.api
    create_trace(api, trace_manifest("resume", ["openat"]))
    assert wait_until(lambda: cluster.running_everywhere("resume"))
    node = cluster.nodes["node-a"]
    node.stop_controller()
    assert cluster.pods["node-a"].pid_ns not in node.filter_namespaces()
    node.start_controller()
    assert wait_until(lambda: cluster.pods["node-a"].pid_ns in node.filter_namespaces())
    e = entries(api, "resume")["node-a"]
    assert e["state"] == "Running"
    # resumed, not started anew: one Started event per node
    hosts = [ev["source"]["host"] for ev in events(api, "resume", "Started")]
    assert sorted(hosts) == sorted(NODES)
    api.delete_object(TRACES, "default", "resume")
    assert wait_until(cluster.no_filters, 10)


def test_relist_after_410_cleans_a_trace_deleted_while_down(cluster: Cluster) -> None:
    api = cluster.api
    create_trace(api, trace_manifest("missed", ["openat"]))
    assert wait_until(lambda: cluster.running_everywhere("missed"))
    api.stop()
    api.delete_object(TRACES, "default", "missed")  # nobody watches: only a relist can tell
    api.expire_history()
    api.start()
    assert wait_until(cluster.no_filters, 15)
    for n in NODES:
        ctl = cluster.nodes[n].controller
        assert ctl is not None
        assert wait_until(lambda ctl=ctl: not [k for k in ctl.runs() if k[2] == "missed"], 5)
        assert ctl.errors == 0


def test_malformed_trace_gets_event_and_status_error(cluster: Cluster) -> None:
    api = cluster.api
    create_trace(api, trace_manifest("bad", ["opneat"]))
    warned = wait_until(lambda: len(events(api, "bad", "InvalidTrace")) == 2)
    assert warned, events(api, "bad")
    for ev in events(api, "bad", "InvalidTrace"):
        assert ev["type"] == "Warning" and "opneat" in ev["message"]
        assert ev["involvedObject"]["kind"] == "Trace"
    assert wait_until(lambda: get_trace(api, "bad")["status"].get("state") == "Failed")
    status = get_trace(api, "bad")["status"]
    assert "opneat" in status["message"]
    for n in NODES:
        assert status["nodes"][n]["state"] == "Failed"
        assert "opneat" in status["nodes"][n]["lastError"]
        ctl = cluster.nodes[n].controller
        assert ctl is not None and ctl.errors == 0
    # a document the model cannot read at all
    create_trace(api, {**trace_manifest("worse", ["openat"]), "spec": {"syscalls": "x"}})
    assert wait_until(lambda: len(events(api, "worse", "InvalidTrace")) == 2)
    api.delete_object(TRACES, "default", "bad")
    api.delete_object(TRACES, "default", "worse")
    # the controllers still work
    create_trace(api, trace_manifest("after", ["openat"]))
    assert wait_until(lambda: cluster.running_everywhere("after"))
    api.delete_object(TRACES, "default", "after")
    assert wait_until(cluster.no_filters, 10)


def test_syshub_run_follows_both_nodes(cluster: Cluster) -> None:
    from syshub.cli.parser import parse_args
    from syshub.cli.run_cmd import run_run

    argv = ["run", "-n", "default", "-l", "app=web", "-s", "openat", "--duration", "3s"]
    argv += ["--name", "from-laptop", "--kubeconfig", cluster.api.url, "-o", "json"]
    out = io.StringIO()
    assert run_run(parse_args(argv), out) == 0
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {d["node"] for d in docs} == set(NODES)
    assert {d["trace"] for d in docs} == {"default/from-laptop"}
    pods = {d["event"]["container"]["pod"] for d in docs}
    assert pods == {p.name for p in cluster.pods.values()}
    assert cluster.api.objects(TRACES) == [] or all(
        o["metadata"]["name"] != "from-laptop" for o in cluster.api.objects(TRACES)
    )
    assert wait_until(cluster.no_filters, 10)


def test_swoll_group_traces_run_too(cluster: Cluster) -> None:
    api = cluster.api
    swoll = "traces.tools.swoll.criticalstack.com"
    manifest = trace_manifest("old-friend", ["sys_openat"])
    manifest["apiVersion"] = "tools.swoll.criticalstack.com/v1alpha1"
    api.create(api.type_by_key(swoll), manifest, "default")

    def status() -> dict[str, object]:
        return dict(api.get_object(swoll, "default", "old-friend").get("status") or {})

    def running() -> bool:
        nodes = status().get("nodes") or {}
        assert isinstance(nodes, dict)
        return all(nodes.get(n, {}).get("containers") == 1 for n in NODES)

    assert wait_until(running), status()
    assert wait_until(lambda: status().get("state") == "Running")
    assert "job" in status() and "jobID" not in status()  # swoll's key names
    assert cluster.traced_everywhere()
    api.delete_object(swoll, "default", "old-friend")
    assert wait_until(cluster.no_filters, 10)
