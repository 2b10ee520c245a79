"""`syshub trace` end to end as a user runs it (subprocess, real kernel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpf

SYSHUB = [sys.executable, "-m", "syshub.cli"]


def run(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYSHUB, *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def test_trace_command_text_and_exit_status(known_calls: Path) -> None:
    r = run("trace", "-s", "openat,connect,exit_group", "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    lines = r.stdout.splitlines()
    assert any(
        ln.endswith(">") and 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3 <' in ln
        for ln in lines
    ), lines
    assert any('"/nonexistent/syshub", O_RDONLY) = -1 ENOENT <' in ln for ln in lines)
    assert any("sin_port=htons(9)" in ln and "= -1 ECONNREFUSED" in ln for ln in lines)
    assert lines[-1].endswith("exit_group(7) = ?")
    assert "syshub: 4 events, 0 dropped" in r.stderr


def test_trace_command_json(known_calls: Path) -> None:
    r = run("trace", "-s", "openat", "-o", "json", "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    evs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [e["args"]["filename"] for e in evs] == ["/etc/hostname", "/nonexistent/syshub"]
    ok, bad = evs
    assert ok["syscall"] == {
        "nr": 257,
        "name": "sys_openat",
        "class": "FileSystem",
        "group": "Files",
    }
    assert ok["error"] == "OK" and ok["return"] == 3 and ok["errno"] is None
    assert bad["error"] == "ENOENT" and bad["return"] == -2 and bad["errno"] == 2
    for e in evs:
        assert e["pid"] == e["tgid"] == e["tid"] and e["ns_pid"] == 1 == e["container_pid"]
        assert e["comm"] == "known_calls"
        assert e["start"] <= e["finish"]
        assert e["pid_ns"] != os.stat("/proc/self/ns/pid").st_ino
        for k in ("uid", "gid", "session", "uts_ns", "mount_ns", "seq"):
            assert k in e
        # The command's pid namespace is its "container" (local topology).
        assert e["container"]["name"] == "known_calls"
        assert e["container"]["pid-namespace"] == e["pid_ns"]
        assert e["container"]["pid"] == e["pid"]


def test_trace_pid_of_running_process(known_calls: Path) -> None:
    from syshub.nsproc import NamespacedProcess

    with NamespacedProcess([str(known_calls), "wait"], stdin=subprocess.PIPE) as child:
        child.release()
        p = subprocess.Popen(
            [*SYSHUB, "trace", "-s", "getppid", "--pid", str(child.pid), "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # probe loaded and filter installed
        stdin = child._relay.stdin
        assert stdin is not None
        stdin.write(b"abc")
        stdin.flush()
        time.sleep(0.5)
        stdin.close()  # the workload exits; --pid mode stops when the process is gone
        out, err = p.communicate(timeout=30)
    evs = [json.loads(ln) for ln in out.splitlines()]
    assert len(evs) >= 3, err
    assert {e["pid"] for e in evs} == {child.pid}
    assert {e["container"]["pid-namespace"] for e in evs} == {child.pid_ns}


def test_trace_host_sees_other_namespaces(known_calls: Path) -> None:
    # `open` and `connect` are rare on a host (libc uses openat), so the
    # workload's calls stand out even if something else runs.
    p = subprocess.Popen(
        [*SYSHUB, "trace", "-s", "open,connect", "--host", "--duration", "3", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    subprocess.run([str(known_calls), "known"], check=False)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    mine = [json.loads(ln) for ln in out.splitlines() if '"comm":"known_calls"' in ln]
    assert [e["syscall"]["name"] for e in mine] == ["sys_open", "sys_connect"], err
    assert mine[0]["pid_ns"] == os.stat("/proc/self/ns/pid").st_ino


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["trace", "-s", "opneat", "--", "true"],
            "unknown syscall 'opneat' (did you mean 'openat'",
        ),
        (["trace", "-s", "openat"], "missing command"),
        (["trace", "-s", "openat", "--pid", "999999999"], "no such process: 999999999"),
        (["trace", "-s", "openat", "--pid", "-3"], "invalid pid"),
        (["trace", "-s", "", "--", "true"], "no syscalls"),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], message: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_without_privileges_one_line_exit_2() -> None:
    """Root without capabilities (empty bounding set): the kernel refuses the
    probe and the user gets one line naming what is needed."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    r = subprocess.run(
        [setpriv, "--bounding-set=-all", "--", *SYSHUB, "trace", "-s", "openat", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert "CAP_BPF" in r.stderr and "root" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_native_probe_raises_permission_error_without_caps() -> None:
    code = (
        "from syshub import _native\n"
        "try:\n    _native.Probe()\n"
        "except PermissionError as e:\n    print('PERM', e)\n"
    )
    r = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.stdout.startswith("PERM") and "CAP_PERFMON" in r.stdout, r.stdout + r.stderr
