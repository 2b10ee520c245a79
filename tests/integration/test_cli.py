"""`syshub trace` end to end as a user runs it (subprocess, real kernel):
targets, formats, bad input. Helpers here are shared by test_cli_*.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SYSHUB = [sys.executable, "-m", "syshub.cli"]
SUMMARY = re.compile(
    r"^syshub: (\d+) matched: (\d+) printed, "
    r"(\d+) dropped \(kernel(?:, (\d+) of them over the fair share of the ring)?\), "
    r"(\d+) dropped \(output\), (\d+) sampled out"
)


def run(*args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYSHUB, *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def start(*args: str, **kw: Any) -> subprocess.Popen[str]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([*SYSHUB, *args], text=True, **kw)


def split_stderr(stderr: str) -> tuple[list[str], list[str]]:
    """(event lines, syshub's own lines) of a stderr that carries both."""
    lines = stderr.splitlines()
    return (
        [ln for ln in lines if not ln.startswith("syshub: ")],
        [ln for ln in lines if ln.startswith("syshub: ")],
    )


def summary(stderr: str) -> dict[str, int]:
    """The summary's counters; asserts its arithmetic is exact."""
    found = [m for m in map(SUMMARY.match, stderr.splitlines()) if m]
    assert len(found) == 1, stderr[-2000:]
    matched, printed, kernel, share, output, sampled = (int(g or 0) for g in found[0].groups())
    assert printed + kernel + output + sampled == matched, found[0].group(0)
    assert share <= kernel, found[0].group(0)  # named only when there are some
    return {
        "matched": matched,
        "printed": printed,
        "kernel": kernel,
        "over_share": share,
        "output": output,
        "sampled": sampled,
    }


def wait_for(cond: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_tracing(p: subprocess.Popen[str]) -> None:
    """Read stderr until syshub says its filters are in."""
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("syshub: tracing "):
            return
        assert not line.startswith("syshub: error"), line
    raise AssertionError("syshub ended before tracing")


def pids_with_arg(marker: str) -> list[int]:
    """Pids whose command line holds ``marker`` (a unique argument)."""
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if marker.encode() in args:
                out.append(int(e))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def has_scopes() -> bool:
    from syshub import Probe

    return hasattr(Probe, "add_scope")


@pytest.mark.bpf
def test_trace_command_text_and_exit_status(known_calls: Path) -> None:
    r = run("trace", "-T", "-s", "openat,connect,exit_group", "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    assert r.stdout == ""  # events go to stderr, like strace
    lines = split_stderr(r.stderr)[0]
    lines = [ln for ln in lines if ln.startswith("known_calls[")]
    assert any(
        ln.endswith(">") and 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3 <' in ln
        for ln in lines
    ), lines
    assert any('"/nonexistent/syshub", O_RDONLY) = -1 ENOENT <' in ln for ln in lines)
    assert any("sin_port=htons(9)" in ln and "= -1 ECONNREFUSED" in ln for ln in lines)
    assert lines[-1].endswith("exit_group(7) = ?")
    s = summary(r.stderr)
    assert s["kernel"] == s["output"] == s["sampled"] == 0
    assert s["printed"] == len(split_stderr(r.stderr)[0])


@pytest.mark.bpf
def test_trace_command_json(known_calls: Path) -> None:
    r = run("trace", "-s", "openat", "--format", "json", "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    evs = [json.loads(ln) for ln in split_stderr(r.stderr)[0]]
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
        # The command is PID 2 of its namespace, under syshub's minimal init.
        assert e["pid"] == e["tgid"] == e["tid"] and e["ns_pid"] == 2 == e["container_pid"]
        assert e["comm"] == "known_calls"
        assert e["start"] <= e["finish"]
        assert e["pid_ns"] != os.stat("/proc/self/ns/pid").st_ino
        # The command's pid namespace is its "container" (local topology).
        assert e["container"]["name"] == "known_calls"
        assert e["container"]["pid-namespace"] == e["pid_ns"]
    assert summary(r.stderr)["printed"] == 2


@pytest.mark.bpf
def test_command_init_is_not_traced(known_calls: Path) -> None:
    """The namespace's init (PID 1, syshub's helper) reaps the command and
    exits: with a process scope none of its calls are traced."""
    if not has_scopes():
        pytest.skip("the native probe has no process scopes yet (add_scope)")
    r = run(
        "trace",
        "-s",
        "wait4,exit_group,getppid,rt_sigtimedwait",
        "--format",
        "json",
        "--",
        str(known_calls),
        "getppid",
        "3",
    )
    assert r.returncode == 0, r.stderr
    evs = [json.loads(ln) for ln in split_stderr(r.stderr)[0]]
    assert [e["syscall"]["name"] for e in evs] == ["sys_getppid"] * 3 + ["sys_exit_group"]
    assert {e["container_pid"] for e in evs} == {2}


@pytest.mark.bpf
def test_trace_pid_is_the_process_and_descendants_only(known_calls: Path, tmp_path: Path) -> None:
    """--pid PID: PID and its children, like strace -f -p; a sibling in the
    same (host) pid namespace is not traced."""
    if not has_scopes():
        pytest.skip("the native probe has no process scopes yet (add_scope)")
    kc = str(known_calls)
    traced = subprocess.Popen(
        ["sh", "-c", f"read _; {kc} getppid 3; {kc} getppid 2"], stdin=subprocess.PIPE
    )
    sibling = subprocess.Popen([kc, "wait"], stdin=subprocess.PIPE)
    out = tmp_path / "events.json"
    try:
        p = start(
            "trace", "-s", "getppid", "-p", str(traced.pid), "--format", "json", "-o", str(out)
        )
        wait_tracing(p)
        for proc in (sibling, traced):
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.close()
        assert traced.wait(timeout=10) == 0
        assert sibling.wait(timeout=10) == 0
        _, err = p.communicate(timeout=30)
    finally:
        for proc in (traced, sibling):
            proc.kill()
    assert p.returncode == 0, err
    evs = [json.loads(ln) for ln in out.read_text().splitlines()]
    mine = [e for e in evs if e["comm"] == "known_calls"]
    assert len(mine) == 5, evs
    assert sibling.pid not in {e["pid"] for e in evs}
    assert summary(err)["printed"] == len(evs)


@pytest.mark.bpf
def test_trace_namespace_of_a_running_process(known_calls: Path) -> None:
    from syshub.nsproc import NamespacedProcess

    with NamespacedProcess([str(known_calls), "wait"], stdin=subprocess.PIPE) as child:
        child.release()
        p = start("trace", "-s", "getppid", "--namespace-of", str(child.pid), "--format", "json")
        wait_tracing(p)
        stdin = child._relay.stdin
        assert stdin is not None
        stdin.write(b"abc")
        stdin.close()  # the workload exits; the trace stops when the process is gone
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    evs = [json.loads(ln) for ln in split_stderr(err)[0]]
    assert len(evs) == 3, err  # one getppid per byte read
    assert {e["pid"] for e in evs} == {child.pid}
    assert {e["container"]["pid-namespace"] for e in evs} == {child.pid_ns}


@pytest.mark.bpf
def test_trace_host_sees_other_namespaces(known_calls: Path) -> None:
    # `open` and `connect` are rare on a host (libc uses openat), so the
    # workload's calls stand out even if something else runs.
    p = start("trace", "-s", "open,connect", "--host", "--duration", "30", "--format", "json")
    wait_tracing(p)
    subprocess.run([str(known_calls), "known"], check=False)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    mine = [json.loads(ln) for ln in split_stderr(err)[0] if '"comm":"known_calls"' in ln]
    assert [e["syscall"]["name"] for e in mine] == ["sys_open", "sys_connect"], err
    assert mine[0]["pid_ns"] == os.stat("/proc/self/ns/pid").st_ino
    summary(err)


@pytest.mark.bpf
def test_syscall_classes_and_all() -> None:
    r = run("trace", "-s", "%NETWORK,openat", "--", "true")
    assert r.returncode == 0, r.stderr
    r = run("trace", "-s", "%nosuch", "--", "true")
    assert r.returncode == 2 and "classes: FileSystem, IPC, Network" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["trace", "-s", "opneat", "--", "true"],
            "unknown syscall 'opneat' (did you mean 'openat'",
        ),
        (["trace", "-s", "openat"], "missing command"),
        (["trace", "-s", "openat", "--pid", "999999999"], "no such process: 999999999"),
        (["trace", "-s", "openat", "--pid", "-3"], "--pid must be in >= 1, got -3"),
        (["trace", "-s", "openat", "--pid", "1", "--", "true"], "not both"),
        (["trace", "-s", "", "--", "true"], "no syscalls"),
        (["trace", "-s", "openat", "--duration", "0", "--", "true"], "--duration must be"),
        (["trace", "-s", "openat", "--duration", "-1", "--", "true"], "--duration must be"),
        (["trace", "-s", "openat", "--duration", "nan", "--", "true"], "--duration must be"),
        (["trace", "-s", "openat", "--duration", "inf", "--", "true"], "--duration must be"),
        (["trace", "-s", "openat", "--ring-bytes", "-4096", "--", "true"], "--ring-bytes"),
        (["trace", "-s", "openat", "--ring-bytes", "1T", "--", "true"], "--ring-bytes"),
        (["trace", "-s", "openat", "--ring-bytes", "65536000", "--", "true"], "power of two"),
        (
            ["trace", "-s", "openat", "--sample-rate", str(2**70), "--", "true"],
            "--sample-rate must be in 1..",
        ),
        (["trace", "-s", "openat", "--str-max", "0", "--", "true"], "--str-max must be in 1.."),
        (["trace", "-s", "openat", "--format", "xml", "--", "true"], "invalid choice: 'xml'"),
        (["syscalls", "--class", "nosuch"], "classes: FileSystem, IPC, Network"),
        (["nosuch"], "invalid choice: 'nosuch'"),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], message: str) -> None:
    r = run(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_version_and_help() -> None:
    from syshub import __version__

    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"syshub {__version__}"
    h = run("trace", "--help")
    assert h.returncode == 0
    text_of_help = " ".join(h.stdout.split())
    for text in (
        "(default: 256)",  # --str-max
        "(default: 16M)",  # --ring-bytes
        "(default: stderr)",  # -o
        "FileSystem, IPC, Network, ProcessManagement, Signals, System, Time",
        "124",  # --duration with a command
    ):
        assert text in text_of_help, text


def test_syscalls_class_any_case() -> None:
    a = run("syscalls", "--class", "network")
    b = run("syscalls", "--class", "Network")
    assert a.returncode == 0 and a.stdout == b.stdout
    rows = [ln.split("\t") for ln in a.stdout.splitlines()]
    assert len(rows) >= 20 and {r[2] for r in rows} == {"Network"}
    assert rows[[r[1] for r in rows].index("connect")][:3] == ["42", "connect", "Network"]


@pytest.mark.bpf
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


@pytest.mark.bpf
def test_probe_raises_permission_error_without_caps() -> None:
    code = (
        "from syshub import Probe\n"
        "try:\n    Probe()\n"
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
