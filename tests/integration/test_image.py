"""The agent's OCI image (``make image``: debootstrap + the wheel + umoci, no registry) runs
under the test containerd + runc, privileged in the host pid namespace, as the agent, and
traces another container through its gRPC API.

Skipped (with the reason) when the image archive has not been built (``make image``), except
in CI (``SYSHUB_REQUIRE_BPF=1``), which builds it first and fails if it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.agent_env import wait_until

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv

pytestmark = [pytest.mark.bpf, pytest.mark.containerd]

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ARCHIVE = ROOT / "target" / "image" / f"syshub-{VERSION}.oci.tar"
IMAGE = f"docker.io/library/syshub:{VERSION}"
WORKLOAD = ["sh", "-c", "while true; do cat /etc/hostname >/dev/null; sleep 0.2; done"]

MANIFEST = """\
apiVersion: syshub.io/v1alpha1
kind: Trace
metadata: {name: from-image, namespace: default}
spec: {syscalls: [openat]}
"""


@pytest.mark.skipif(
    not ARCHIVE.exists() and os.environ.get("SYSHUB_REQUIRE_BPF") != "1",
    reason=f"{ARCHIVE} not built (make image)",
)
def test_image_runs_as_the_agent(containerd: ContainerdEnv) -> None:
    from syshub.client import AgentClient

    containerd._ctr(
        "images", "import", "--base-name", "docker.io/library/syshub", str(ARCHIVE), timeout=300
    )
    assert IMAGE in containerd._ctr("images", "ls", "-q")
    pod = containerd.run_pod("traced", labels={"app": "traced"})
    cid = containerd.run_container(pod, "worker", WORKLOAD)
    pid = containerd.container_pid(cid)
    sockdir = Path(tempfile.mkdtemp(prefix="syshub-image-"))
    name = f"syshub-image-agent-{int(time.time())}"
    containerd._ctr(
        "run",
        "-d",
        "--privileged",
        "--net-host",
        "--with-ns",  # the host pid namespace (this test's; /proc/1 may be unreadable)
        f"pid:/proc/{os.getpid()}/ns/pid",
        "--mount",
        f"type=bind,src={sockdir},dst=/run/syshub,options=rbind:rw",
        "--mount",
        "type=bind,src=/sys/kernel/tracing,dst=/sys/kernel/tracing,options=rbind:rw",
        IMAGE,
        name,
        "/opt/syshub/bin/syshub",
        "agent",
        "--socket",
        "/run/syshub/agent.sock",
        "--node-name",
        "image-node",
        "--state-dir",  # in the test's temporary directory, not /var/lib/syshub
        "/run/syshub/state",
        timeout=60,
    )
    try:
        sock = sockdir / "agent.sock"
        assert wait_until(sock.exists, 60), containerd._ctr("tasks", "ls")
        with AgentClient(f"unix://{sock}") as client:
            info = client.create_trace(MANIFEST, namespace_of=pid)
            assert info.state == "Running" and info.node == "image-node"
            found = None
            deadline = time.monotonic() + 20
            for batch in client.watch("from-image"):
                for ev in batch.events:
                    if ev.get("comm") == "cat" and ev["args"].get("filename") == "/etc/hostname":
                        found = ev
                if found is not None or time.monotonic() > deadline:
                    break
            assert found is not None, "no openat of the traced container through the image"
            assert found["pid_ns"] != 0
            client.delete_trace("from-image")
    finally:
        with contextlib.suppress(RuntimeError):
            containerd._ctr("tasks", "kill", "-s", "SIGKILL", name)
        with contextlib.suppress(RuntimeError):
            wait_until(lambda: "STOPPED" in containerd._ctr("tasks", "ls"), 10)
            containerd._ctr("tasks", "delete", name)
        with contextlib.suppress(RuntimeError):
            containerd._ctr("containers", "delete", name)
        containerd.remove_pod(pod)
        shutil.rmtree(sockdir, ignore_errors=True)
