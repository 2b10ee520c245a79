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
