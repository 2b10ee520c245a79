"""``syshub run`` as a real process against the local API server: it creates the Trace with
the given selector and syscalls, prints the lines of this trace's job from every agent pod's
log (and nothing else), and on Ctrl-C deletes the Trace and exits 130. Errors are one line.
No kernel needed: the agents' logs are written by the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from support.k8s_apiserver import FakeApiServer
from support.k8s_cluster import AGENT_LABELS, AGENT_NS, TRACES, install_crds, wait_until
from support.k8s_objects import make_pod
from syshub.agent.controller.status import job_id_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.close()


def _run(api: FakeApiServer, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    cmd = [sys.executable, "-m", "syshub.cli", "run", "--kubeconfig", api.url, *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def _line(job: str, node: str, pod: str, text: str) -> str:
    doc = {
        "trace": "shop/web",
        "group": "syshub.io",
        "job": job,
        "node": node,
        "text": text,
        "event": {"container": {"namespace": "shop", "pod": pod, "name": "main"}},
    }
    return json.dumps(doc) + "\n"


def test_run_prints_every_node_and_deletes_on_ctrl_c(api: FakeApiServer) -> None:
    install_crds(api)
    for node in ("node-a", "node-b"):
        api.create_pod(make_pod(f"agent-{node}", AGENT_NS, labels=AGENT_LABELS, node=node))
    proc = _run(api, "-n", "shop", "-l", "app=web", "-s", "openat,connect", "--name", "web")
    try:
        created = wait_until(lambda: api.objects(TRACES), 20)
        assert created, proc.stderr.read() if proc.poll() is not None else "no trace"
        (obj,) = created
        spec = obj["spec"]
        assert spec["syscalls"] == ["openat", "connect"]
        assert spec["labelSelector"] == {"matchLabels": {"app": "web"}}
        assert obj["metadata"]["namespace"] == "shop"
        job = job_id_for("web", obj["metadata"]["uid"])
        api.append_log(AGENT_NS, "agent-node-a", "not json\n" + _line("other-1", "x", "p", "no"))
        api.append_log(AGENT_NS, "agent-node-a", _line(job, "node-a", "web-1", "cat openat(a)"))
        api.append_log(AGENT_NS, "agent-node-b", _line(job, "node-b", "web-2", "cat openat(b)"))
        # Ctrl-C once both followers printed what arrived (each polls its pod's log on its
        # own; a fixed wait lost node-b's line once in CI)
        assert proc.stdout is not None and proc.stderr is not None
        printed: list[str] = []
        reader = threading.Thread(target=lambda: printed.extend(proc.stdout or ()), daemon=True)
        reader.start()
        assert wait_until(lambda: len(printed) >= 2, 20), printed
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        reader.join(timeout=20)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = [line.rstrip("\n") for line in printed]
    assert sorted(lines) == [
        "node-a shop/web-1/main cat openat(a)",
        "node-b shop/web-2/main cat openat(b)",
    ]
    assert api.objects(TRACES) == []  # deleted on Ctrl-C
    assert "Traceback" not in err
    assert "2 events from nodes: node-a, node-b; trace shop/web deleted" in err


def test_run_errors_are_one_line(api: FakeApiServer) -> None:
    # no CRD installed
    api.create_pod(make_pod("agent-a", AGENT_NS, labels=AGENT_LABELS))
    proc = _run(api, "-s", "openat", "--duration", "1s")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("syshub: error: the Trace resource")
    assert "Traceback" not in err
    proc = _run(api, "-s", "opneat")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "opneat" in err and "Traceback" not in err
    install_crds(api)
    proc = _run(api, "-s", "openat", "--agent-namespace", "nowhere")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "no agent pods" in err
