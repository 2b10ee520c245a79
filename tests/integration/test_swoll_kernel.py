"""swoll's event JSON from the real kernel: a program in its own pid namespace opens a
file, writes, connects over TCP, calls getsid and execs; its events, written with
``to_dict(style="swoll")`` and read back as JSON lines, carry swoll's argument documents
with the program's real values, and swoll's pid/tid meaning."""

from __future__ import annotations

import base64
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from support.hub_kernel import Collector, run_job
from syshub import Hub, Target, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import LocalObserver

pytestmark = pytest.mark.bpf

PROGRAM = """
import os, socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
try:
    os.open(path + ".missing", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECTORY)
except OSError:
    pass
fd = os.open("/dev/null", os.O_WRONLY)
os.write(fd, b"swoll-json")
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", port))
s.close()
os.getsid(0)
os.execv("/bin/true", ["true", "a1", "a2"])
"""


def lines(events: list[Any]) -> list[dict[str, Any]]:
    """The events as a consumer reads them: JSON lines of swoll's documents."""
    text = "".join(json.dumps(ev.to_dict(style="swoll")) + "\n" for ev in events)
    return [json.loads(line) for line in text.splitlines()]


def test_swoll_documents_from_the_kernel(
    hub_obs: tuple[Hub, LocalObserver], tmp_path: Path
) -> None:
    hub, _ = hub_obs
    target_file = tmp_path / "swoll-target"
    target_file.write_text("x")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    argv = [sys.executable, "-I", "-c", PROGRAM, str(port), str(target_file)]
    child = NamespacedProcess(argv)
    try:
        t = Trace.new("swoll-json", ["openat", "write", "socket", "connect", "getsid", "execve"])
        run_job(hub, t, target=Target.pid_namespace(child.pid_ns))
        col = Collector(hub.subscribe(t))
        child.release()
        assert child.wait(timeout=30) == 0
        hub.delete_trace(t)
        events = col.finish()
    finally:
        child.close()
        listener.close()
    docs = lines(events)
    assert docs, "no events"
    for ev, doc in zip(events, docs, strict=True):
        # swoll's pid is the thread id, its tid the process id (host view).
        assert (doc["pid"], doc["tid"], doc["container_pid"]) == (ev.tid, ev.tgid, ev.ns_tgid)
        assert doc["pid_ns"] == child.pid_ns and doc["syscall"]["name"] == f"sys_{ev.syscall}"
        assert doc["start"] <= doc["finish"] or doc.get("returned") is False

    def one(name: str, pred: Any = lambda d: True) -> dict[str, Any]:
        found = [d for d in docs if d["syscall"]["name"] == f"sys_{name}" and pred(d)]
        assert found, f"no {name} event matching: {[d['syscall']['name'] for d in docs]}"
        return found[0]

    opened = one("openat", lambda d: d["args"]["pathname"] == str(target_file))
    assert opened["args"] == {"dir_fd": -100, "pathname": str(target_file), "flags": ["O_CLOEXEC"]}
    assert opened["error"] == "OK" and opened["return"] >= 0
    missing = one("openat", lambda d: d["args"]["pathname"].endswith(".missing"))
    assert missing["error"] == "EINVAL" and missing["return"] == -22  # O_CREAT|O_DIRECTORY
    # (Python's os.open adds O_CLOEXEC)
    assert missing["args"]["flags"] == ["O_WRONLY", "O_CREAT", "O_EXCL", "O_DIRECTORY", "O_CLOEXEC"]
    wrote = one("write", lambda d: d["args"]["count"] == len(b"swoll-json"))
    assert base64.b64decode(wrote["args"]["buf"]) == b"swoll-json"
    assert wrote["return"] == len(b"swoll-json")
    sock = one("socket", lambda d: d["args"]["family"] == "AF_INET")
    assert sock["args"] == {
        "family": "AF_INET",
        "type": ["SOCK_STREAM", "SOCK_CLOEXEC"],
        "protocol": "IPPROTO_IP",
    }
    conn = one("connect")
    assert conn["args"]["Saddr"]["decoded"] == f"ipv4:127.0.0.1:{port}"
    assert conn["args"]["Saddr"]["Family"] == 2 and conn["error"] == "OK"
    assert conn["args"]["Saddr"]["Data"][2:6] == [127, 0, 0, 1]
    sid = one("getsid")
    assert sid["args"]["name"] == "getsid" and sid["args"]["ret"] is None
    assert sid["args"]["args"] == [{"name": "pid", "type": "pid", "val": 0}]
    execd = one("execve", lambda d: d["args"]["filename"] == "/bin/true")
    assert execd["args"] == {"filename": "/bin/true", "argv": ["true", "a1", "a2", ""]}
    assert execd["container_pid"] == 1 and execd["error"] == "OK"
