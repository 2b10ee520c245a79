"""`syshub trace` output: where events go, the one event document, exact
accounting with a slow reader, escaping, and output errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_cli import SYSHUB, run, split_stderr, summary, wait_for

pytestmark = pytest.mark.bpf


def _pipeline(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


def test_events_do_not_mix_with_the_commands_stdout() -> None:
    r = run("trace", "-s", "write,exit_group", "--", "sh", "-c", "echo hello; echo world")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\nworld\n"
    events = split_stderr(r.stderr)[0]
    assert sum('write(1, "hello\\n", 6) = 6' in ln for ln in events) == 1, events
    summary(r.stderr)


def test_output_file_and_stdout(tmp_path: Path, known_calls: Path) -> None:
    out = tmp_path / "events.txt"
    r = run("trace", "-s", "openat", "-o", str(out), "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all(ln.startswith("known_calls[") for ln in lines)
    # stderr holds the summary only
    assert [ln for ln in r.stderr.splitlines() if ln] == [r.stderr.strip()]
    assert summary(r.stderr)["printed"] == 2
    r = run("trace", "-s", "openat", "-o", "-", "--format", "json", "--", str(known_calls), "known")
    assert [json.loads(ln)["return"] for ln in r.stdout.splitlines()] == [3, -2]


def test_slow_reader_loses_nothing_uncounted(known_calls: Path) -> None:
    """A reader that sleeps while 200k calls are made: what the pipe, the
    queue and the ring cannot hold is counted, exactly."""
    n = 200_000
    cmd = " ".join(
        [
            *SYSHUB,
            "trace",
            "-s",
            "getppid",
            "-o",
            "-",
            "--queue",
            "2000",
            "--ring-bytes",
            "256K",
            "--",
            str(known_calls),
            "getppid",
            str(n),
        ]
    )
    r = _pipeline(f"{cmd} | (sleep 2; cat)")
    assert r.returncode == 0, r.stderr
    s = summary(r.stderr)
    assert s["matched"] == n  # exactly the command's calls
    assert s["printed"] == len(r.stdout.splitlines())
    assert s["kernel"] + s["output"] > 0, s  # the slow reader did lose some
    assert s["sampled"] == 0


def test_a_flood_over_the_fair_share_is_named_in_the_summary(known_calls: Path) -> None:
    """200k calls flat out into a 4 KiB ring: the kernel drops what the reader
    cannot take in time, over the key's fair share of the ring, and the
    summary says how many of the kernel's drops that was."""
    n = 200_000
    r = run(
        "trace", "-s", "getppid", "-o", os.devnull, "--ring-bytes", "4K", "--",
        str(known_calls), "getppid", str(n),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = summary(r.stderr)
    assert s["matched"] == n
    assert 0 < s["over_share"] <= s["kernel"], r.stderr


def test_sample_rate_is_counted(known_calls: Path) -> None:
    r = run(
        "trace", "-s", "getppid", "--sample-rate", "10", "--", str(known_calls), "getppid", "1000"
    )
    s = summary(r.stderr)
    assert s["matched"] == 1000 and s["printed"] + s["kernel"] == 100 and s["sampled"] == 900


def _hub_events(known_calls: Path, syscalls: list[str]) -> list[Any]:
    """The same workload seen by an in-process Hub subscriber."""
    from syshub import Hub, HubConfig, Job, Target, Trace
    from syshub.nsproc import NamespacedProcess
    from syshub.topology import HostObserver

    hub = Hub(HubConfig(ring_bytes=1 << 22), observer=HostObserver()).start()
    try:
        with NamespacedProcess([str(known_calls), "known"], init=True) as child:
            job = hub.run_job(Job(Trace.new("doc", syscalls), target=Target.process(child.pid)))
            sub = hub.subscribe(job)  # the command is held: nothing is missed
            assert hub.wait_applied(job, timeout=10)
            # The observer polls /proc: let it see the new namespace first.
            wait_for(lambda: hub.topology.lookup_container(child.pid_ns), what="the topology")
            child.release()
            assert child.wait(timeout=30) == 7
            hub.delete_trace(job)
            events: list[Any] = []
            while batch := sub.get_batch(4096, timeout=0):
                events.extend(batch)
            return events
    finally:
        hub.stop()


def test_one_event_document(known_calls: Path) -> None:
    """The CLI's JSON line of an event is the subscriber's ``ev.to_dict()``."""
    from syshub.cli.output import json_line

    names = ["openat", "connect", "execve", "exit_group"]
    evs = _hub_events(known_calls, names)
    assert len(evs) == 6  # the command's execve, 2 openat, connect, execve, exit_group
    for ev in evs:
        assert json.loads(json_line(ev)) == json.loads(json.dumps(ev.to_dict()))
    r = run("trace", "-s", ",".join(names), "--format", "json", "--", str(known_calls), "known")
    cli = [json.loads(ln) for ln in split_stderr(r.stderr)[0]]
    hub = [json.loads(json.dumps(ev.to_dict())) for ev in evs]
    assert [sorted(d) for d in cli] == [sorted(d) for d in hub]
    stable = ("syscall", "args", "return", "error", "comm", "uid", "gid", "container_pid")
    for a, b in zip(cli, hub, strict=True):
        for d in (a, b):
            d["args"].pop("envp", None)  # a stack address
            d["args"].pop("mode", None)  # openat without O_CREAT: a leftover register
        assert {k: a[k] for k in stable} == {k: b[k] for k in stable}
        assert sorted(a["container"]) == sorted(b["container"])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_control_characters_are_escaped(fmt: str) -> None:
    code = (
        "import ctypes, os\n"
        "ctypes.CDLL(None).prctl(15, b'\\x1b[31mx', 0, 0, 0)\n"
        "os.getppid()\n"
        "open('/tmp/\\x1b[2Jsyshub-esc', 'a').close()\n"
        "os.unlink('/tmp/\\x1b[2Jsyshub-esc')\n"
    )
    r = subprocess.run(
        [
            *SYSHUB,
            "trace",
            "-s",
            "getppid,openat",
            "--format",
            fmt,
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stderr and b"\x1b" not in r.stdout
    err = r.stderr.decode()
    assert any("getppid" in ln and "31mx" in ln for ln in err.splitlines()), err
    assert "syshub-esc" in err


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "/nonexistent-dir/x",
            "cannot open output file '/nonexistent-dir/x': No such file or directory",
        ),
        ("/tmp", "cannot open output file '/tmp': Is a directory"),
        ("/dev/full", "cannot write to /dev/full: No space left on device"),
    ],
)
def test_output_errors_one_line_exit_1(output: str, message: str) -> None:
    r = run("trace", "-s", "openat,execve", "-o", output, "--", "true")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"syshub: error: {message}"


def test_reader_going_away_ends_the_trace_counted() -> None:
    """`syshub ... -o - | head`: the trace stops as with SIGPIPE (141), the
    command is ended, what could not be written is counted."""
    loop = "'while :; do /bin/true; done'"
    cmd = " ".join([*SYSHUB, "trace", "-s", "execve", "--format", "json", "-o", "-"])
    cmd += f" -- sh -c {loop}"
    r = _pipeline(f"{cmd} | head -c 100 >/dev/null; exit ${{PIPESTATUS[0]}}")
    assert r.returncode == 141, r.stderr
    s = summary(r.stderr)
    assert s["output"] > 0 and s["printed"] >= 1
    assert r.stderr.count("\n") == 1, r.stderr  # the summary only: no traceback, no noise
