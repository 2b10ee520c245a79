"""`syshub trace -o swoll-json`: one swoll TraceEvent document per line, as a consumer
written for swoll reads them: swoll's keys in its order, its pid/tid meaning, its argument
documents for the calls it decodes and its generic form for the others."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import run, summary

pytestmark = pytest.mark.bpf

TOP_KEYS = [
    "syscall", "pid", "tid", "container_pid", "uid", "gid", "comm", "session", "container",
    "error", "return", "pid_ns", "uts_ns", "mount_ns", "start", "finish", "args",
]  # fmt: skip
SCRIPT = "cat /etc/hostname >/dev/null; echo swoll >/dev/null; exec /bin/true x y"


def test_trace_swoll_json(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    r = run(
        "trace",
        "-s",
        "openat,write,execve,getsid",
        "-o",
        "swoll-json",
        "--output",
        str(out),
        "--",
        "sh",
        "-c",
        SCRIPT,
    )
    assert r.returncode == 0, r.stderr
    docs: list[dict[str, Any]] = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert len(docs) == summary(r.stderr)["printed"] > 0
    for d in docs:
        assert [k for k in d if k != "returned"] == TOP_KEYS, d
        assert d["syscall"]["name"].startswith("sys_")
        assert isinstance(d["pid"], int) and isinstance(d["tid"], int)
        # The command's pid namespace, as the CLI's local observer names it.
        assert d["container"]["pid-namespace"] == d["pid_ns"], d
    names = [d["syscall"]["name"] for d in docs]
    opened = [d for d in docs if d["syscall"]["name"] == "sys_openat"]
    hostname = [d for d in opened if d["args"]["pathname"] == "/etc/hostname"]
    assert hostname, names
    args = hostname[0]["args"]
    assert set(args) == {"dir_fd", "pathname", "flags"} and args["dir_fd"] == -100
    assert "O_WRONLY" not in args["flags"] and all(f.startswith("O_") for f in args["flags"])
    assert hostname[0]["comm"] == "cat" and hostname[0]["error"] == "OK"
    wrote = [d for d in docs if d["syscall"]["name"] == "sys_write"]
    assert any(base64.b64decode(d["args"]["buf"]) == b"swoll\n" for d in wrote), wrote
    execs = [d for d in docs if d["syscall"]["name"] == "sys_execve"]
    true = [d for d in execs if d["args"]["filename"] == "/bin/true"]
    assert true and true[0]["args"]["argv"] == ["/bin/true", "x", "y", ""]
    # The first execve is the command itself: swoll's tid is its process id (host view),
    # its pid the thread's (the same, single-threaded), container_pid its pid in its namespace.
    first = execs[0]
    assert first["args"]["filename"].endswith("/sh") and first["args"]["argv"][0] == "sh"
    assert first["tid"] == first["pid"] and 1 <= first["container_pid"] < first["tid"]
