"""A tracer killed with SIGKILL mid-trace leaves no kernel object behind: the
programs, maps and links of its probe are held only by its file descriptors,
so the kernel frees them with the process. Checked by the ids the killed
process held (from /proc/PID/fdinfo), looked up with bpftool afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpf

SYSHUB = [sys.executable, "-m", "syshub.cli"]
KINDS = {"prog_id": "prog", "map_id": "map", "link_id": "link"}


def bpf_ids(pid: int) -> dict[str, set[int]]:
    """The BPF program, map and link ids process ``pid`` holds fds of."""
    out: dict[str, set[int]] = {k: set() for k in KINDS.values()}
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for entry in fdinfo.iterdir():
        try:
            text = entry.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in KINDS:
                out[KINDS[key]].add(int(value.strip()))
    return out


def bpftool() -> str:
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not Path(tool).exists():
        pytest.fail("bpftool (apt: bpftool) is needed to list kernel objects")
    return tool


def exists(kind: str, ident: int) -> bool:
    r = subprocess.run(
        [bpftool(), kind, "show", "id", str(ident)], capture_output=True, check=False
    )
    return r.returncode == 0


def wait_for(cond: object, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if callable(cond) and cond():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_sigkill_mid_trace_leaves_no_kernel_objects(tmp_path: Path) -> None:
    out = tmp_path / "events"
    proc = subprocess.Popen(
        [
            *SYSHUB,
            "trace",
            "-s",
            "getppid,openat",
            "-o",
            str(out),
            "--",
            "sh",
            "-c",
            "while :; do cat /etc/hostname >/dev/null; done",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Tracing: hooks attached (links exist) and events written.
        wait_for(lambda: bpf_ids(proc.pid)["link"], 20, "the tracer's links")
        wait_for(lambda: out.exists() and out.stat().st_size > 0, 20, "events")
        held = bpf_ids(proc.pid)
        assert held["prog"] and held["map"] and held["link"], held
        for kind, ids in held.items():
            assert all(exists(kind, i) for i in ids), (kind, ids)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Links and maps go with the fds; programs after an RCU grace period.
    wait_for(
        lambda: not any(exists(k, i) for k, ids in held.items() for i in ids),
        15,
        f"kernel objects {held} to be freed",
    )
