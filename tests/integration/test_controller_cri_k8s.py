"""An unreadable CRI, reported on the Traces of ``syshub agent --kubernetes`` (a real agent
process, the local API server, pods in the test containerd).

The agent reads containers from a CRI socket path that a proxy (support.cri_proxy) makes
missing, refused (a socket file nobody listens on) or answering garbage, each time back to
the real containerd; then the real containerd itself stops and starts again. Each outage
gives the Trace a Warning Event ``CRIUnreadable`` and the node's entry a ``lastError`` (and
one more in ``errors``); each recovery a Normal Event ``CRIReadable`` and an entry whose
``lastError`` is empty again (NodeStatus's "no error"). The container already traced stays
traced throughout.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("kubernetes")

from support.agent_env import AgentProcess
from support.cri_proxy import CriProxy, Mode
from support.faults import containerd_down, containerd_up
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

NODE = "node-cri"
TRACE = "cri-watch"

#: What the entry's lastError says for each fault (the agent's own one-line reasons).
EXPECT: dict[Mode, str] = {
    "missing": "no such socket",
    "refuse": "nothing is listening",
    "garbage": "no CRI runtime answers",
}


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    install_crds(server)
    yield server
    server.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cri-", dir="/tmp"))  # unix socket paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _entry(api: FakeApiServer) -> dict[str, Any]:
    return dict(entries(api, TRACE).get(NODE) or {})


def _outage_and_back(api: FakeApiServer, agent: AgentProcess, n: int, expect: str) -> None:
    """The n-th outage is reported (Event, lastError), then its end once readable again."""
    down = wait_until(lambda: len(events(api, TRACE, "CRIUnreadable")) >= n, 20)
    assert down, (events(api, TRACE), agent.logs()[-2000:])
    ev = events(api, TRACE, "CRIUnreadable")[n - 1]
    assert ev["type"] == "Warning" and expect in ev["message"], ev["message"]
    assert wait_until(lambda: expect in str(_entry(api).get("lastError")), 10), _entry(api)
    entry = _entry(api)
    assert entry["lastError"].startswith("CRI unreadable: "), entry
    assert entry["errors"] >= n and entry["state"] == "Running", entry
    assert entry["containers"] == 1, entry  # the traced container stays traced


def _recovered(api: FakeApiServer, agent: AgentProcess, n: int) -> None:
    up = wait_until(lambda: len(events(api, TRACE, "CRIReadable")) >= n, 20)
    assert up, (events(api, TRACE), agent.logs()[-2000:])
    assert events(api, TRACE, "CRIReadable")[n - 1]["type"] == "Normal"
    assert wait_until(lambda: not _entry(api).get("lastError"), 10), _entry(api)
    assert _entry(api)["state"] == "Running"


def test_unreadable_cri_is_reported_and_recovers(
    containerd: ContainerdEnv, api: FakeApiServer, short_dir: Path
) -> None:
    pod = ClusterPod(containerd, api, "web-cri", NODE, {"app": "web"})
    proxy = CriProxy(containerd.socket, short_dir / "cri.sock")
    proxy.set("pass")
    agent = AgentProcess(
        short_dir,
        node=NODE,
        args=["--kubernetes", "--kubeconfig", api.url, "--cri-endpoint", proxy.endpoint],
    )
    try:
        agent.start()
        create_trace(api, trace_manifest(TRACE, ["openat"]))
        assert wait_until(lambda: _entry(api).get("containers") == 1, 20), (
            _entry(api),
            agent.logs()[-3000:],
        )
        assert not _entry(api).get("lastError"), _entry(api)
        n = 0
        for mode in ("missing", "refuse", "garbage"):
            n += 1
            proxy.set(mode)
            _outage_and_back_or_fail(api, agent, n, EXPECT[mode], proxy)
        # the real containerd behind the path stops, then comes back
        n += 1
        containerd_down(containerd)
        try:
            _outage_and_back(api, agent, n, "CRI endpoint")
        finally:
            containerd_up(containerd)
        _recovered(api, agent, n)
        assert agent.proc is not None and agent.proc.poll() is None, agent.logs()[-2000:]
        said = [e["message"] for e in events(api, TRACE, "CRIUnreadable")]
        print("\nCRIUnreadable events:\n  " + "\n  ".join(said))
        api.delete_object(TRACES, "default", TRACE)
    finally:
        agent.stop()
        proxy.set("missing")
        pod.remove()


def _outage_and_back_or_fail(
    api: FakeApiServer, agent: AgentProcess, n: int, expect: str, proxy: CriProxy
) -> None:
    try:
        _outage_and_back(api, agent, n, expect)
    finally:
        proxy.set("pass")
    _recovered(api, agent, n)
