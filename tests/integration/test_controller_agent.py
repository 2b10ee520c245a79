"""``syshub agent --kubernetes`` as a real process: the controller component runs in the
agent, a Trace object in the local API server is traced on the agent's node, its events are
JSON lines on the agent's stdout labelled with the trace (what ``kubectl logs`` shows), the
agent's gRPC API lists the trace, deleting the object stops it, SIGTERM ends the agent."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("kubernetes")

from support.agent_env import AgentProcess
from support.k8s_apiserver import FakeApiServer
from support.k8s_cluster import (
    TRACES,
    ClusterPod,
    create_trace,
    entries,
    events,
    install_crds,
    trace_manifest,
    wait_until,
)

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv

pytestmark = [pytest.mark.bpf, pytest.mark.containerd]

NODE = "node-c"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    install_crds(server)
    yield server
    server.close()


def _event_lines(agent: AgentProcess, trace: str) -> list[dict[str, Any]]:
    return [r for r in agent.log_records() if r.get("trace") == trace and "event" in r]


def test_agent_runs_kubernetes_traces(
    containerd: ContainerdEnv, api: FakeApiServer, tmp_path: Path
) -> None:
    pod = ClusterPod(containerd, api, "web-c", NODE, {"app": "web"})
    agent = AgentProcess(
        tmp_path,
        node=NODE,
        args=["--kubernetes", "--kubeconfig", api.url, "--cri-endpoint", containerd.endpoint],
    )
    try:
        agent.start()
        create_trace(api, trace_manifest("via-agent", ["openat"]))
        running = wait_until(
            lambda: entries(api, "via-agent").get(NODE, {}).get("containers") == 1, 20
        )
        assert running, (entries(api, "via-agent"), agent.logs()[-3000:])
        lines = wait_until(lambda: _event_lines(agent, "default/via-agent"))
        assert lines, agent.logs()[-3000:]
        assert {r["event"]["container"]["pod"] for r in lines} == {"web-c"}
        assert {r["node"] for r in lines} == {NODE}
        listed = {(t.namespace, t.name) for t in agent.client().list_traces()}
        assert ("default", "via-agent") in listed
        api.delete_object(TRACES, "default", "via-agent")
        assert wait_until(lambda: not agent.client().list_traces(), 10)
        agent.signal(signal.SIGTERM)
        assert agent.wait() == 0
        assert not [r for r in agent.log_records() if r.get("level") == "error"], agent.logs()
    finally:
        agent.stop()
        pod.remove()
    assert json.dumps(lines[0])  # the lines are JSON documents


def test_filter_key_limit_gets_event_and_status_error(
    containerd: ContainerdEnv, api: FakeApiServer, tmp_path: Path
) -> None:
    """An agent whose Hub may install 2 kernel filter keys (``max_filter_keys``, here from
    the environment as a DaemonSet would set it); a Trace of 3 syscalls on one container
    needs 3: the container stays untraced, a FilterLimit Warning Event says why, the node's
    entry counts the error and shows it; a Trace that fits still runs."""
    pod = ClusterPod(containerd, api, "web-lim", NODE, {"app": "web"})
    agent = AgentProcess(
        tmp_path,
        node=NODE,
        args=["--kubernetes", "--kubeconfig", api.url, "--cri-endpoint", containerd.endpoint],
        env={"SYSHUB_AGENT_MAX_FILTER_KEYS": "2"},
    )
    try:
        agent.start()
        create_trace(api, trace_manifest("too-many", ["openat", "read", "write"]))
        limited = wait_until(lambda: events(api, "too-many", "FilterLimit"), 20)
        assert limited, (events(api, "too-many"), agent.logs()[-3000:])
        ev = limited[0]
        assert ev["type"] == "Warning", ev
        assert "filter-key limit is reached (2 keys, setting max_filter_keys)" in ev["message"]
        assert "web-lim" in ev["message"] or "worker" in ev["message"], ev["message"]
        assert ev["source"]["host"] == NODE
        assert wait_until(lambda: entries(api, "too-many").get(NODE, {}).get("errors"), 10)
        entry = entries(api, "too-many")[NODE]
        assert entry["errors"] >= 1 and "filter-key limit" in entry["lastError"], entry
        assert entry["containers"] == 0, entry  # untraced rather than half traced
        api.delete_object(TRACES, "default", "too-many")
        # two keys fit
        create_trace(api, trace_manifest("fits", ["openat", "read"]))
        running = wait_until(lambda: entries(api, "fits").get(NODE, {}).get("containers") == 1)
        assert running, (entries(api, "fits"), agent.logs()[-3000:])
        assert not events(api, "fits", "FilterLimit")
        api.delete_object(TRACES, "default", "fits")
    finally:
        agent.stop()
        pod.remove()
