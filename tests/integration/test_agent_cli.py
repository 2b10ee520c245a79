"""``syshub traces`` and ``syshub watch`` against two real agents on this
node: the trace is created on both, events are merged and carry the node
name, the summary accounts per agent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.agent_env import AgentProcess, Workload, seen_by_host_observer, wait_until

pytestmark = pytest.mark.bpf


def syshub(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syshub.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[AgentProcess]]:
    d = tmp_path_factory.mktemp("cli")
    started = [AgentProcess(d, node=n).start() for n in ("cli-a", "cli-b")]
    try:
        yield started
    finally:
        for a in started:
            assert a.stop() == 0, a.logs()


def test_traces_and_merged_watch(
    agents: list[AgentProcess], known_calls: Path, tmp_path: Path
) -> None:
    w = Workload(known_calls, tmp_path)
    try:
        assert wait_until(lambda: seen_by_host_observer(w.name))
        where = [x for a in agents for x in ("--agent", a.target)]
        manifest = tmp_path / "trace.yaml"
        manifest.write_text(w.manifest("clitrace"))
        out = syshub("traces", "create", "-f", str(manifest), "--wait", "10", *where)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            "trace default/clitrace created on cli-a (filters in)",
            "trace default/clitrace created on cli-b (filters in)",
        ]
        out = syshub("traces", "list", *where)
        rows = [line.split() for line in out.stdout.splitlines()]
        assert rows[0][:4] == ["NODE", "NAMESPACE", "NAME", "STATE"]
        assert [r[:5] for r in rows[1:]] == [
            ["cli-a", "default", "clitrace", "Running", "getppid"],
            ["cli-b", "default", "clitrace", "Running", "getppid"],
        ]
        out = syshub("traces", "get", "clitrace", "--agent", agents[0].target)
        doc = json.loads(out.stdout)
        assert doc["name"] == "clitrace" and doc["manifest"]["spec"]["hostSelector"] == [w.name]
        watch = subprocess.Popen(
            [sys.executable, "-m", "syshub.cli", "watch", "clitrace", "-o", "json", *where],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        c = agents[0].client()
        d = agents[1].client()
        assert wait_until(lambda: c.stats().streams and d.stats().streams, timeout=20)
        w.calls(3)
        assert wait_until(
            lambda: (
                c.stats("clitrace").streams[0].counters.delivered == 3
                and d.stats("clitrace").streams[0].counters.delivered == 3
            )
        )
        for a in agents:
            out = syshub("traces", "delete", "clitrace", "--agent", a.target)
            assert out.returncode == 0 and "3 matched: 3 delivered, 0 dropped" in out.stdout
        stdout, stderr = watch.communicate(timeout=30)
        assert watch.returncode == 0, stderr
        docs = [json.loads(line) for line in stdout.splitlines()]
        assert sorted(d["node"] for d in docs) == ["cli-a"] * 3 + ["cli-b"] * 3
        assert all(d["container"]["name"] == w.name for d in docs)
        summary = sorted(line for line in stderr.splitlines() if line.startswith("syshub: cli-"))
        assert summary == [
            f"syshub: {n}: 3 matched: 3 delivered, 0 dropped (stream), 0 queued (trace ended)"
            for n in ("cli-a", "cli-b")
        ]
    finally:
        w.close()


def test_cli_errors_are_one_line(agents: list[AgentProcess], tmp_path: Path) -> None:
    a = agents[0].target
    out = syshub("traces", "get", "nope", "--agent", a)
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: syshub.io/v1alpha1\nkind: Trace\nmetadata: {name: b}\n"
                   "spec: {syscalls: [nosuchcall]}\n")  # fmt: skip
    out = syshub("traces", "create", "-f", str(bad), "--agent", a)
    assert out.returncode == 2 and "spec.syscalls[0]" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = syshub("watch", "nope", "--agent", a)
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr
    out = syshub("traces", "list", "--agent", f"unix://{tmp_path}/none.sock")
    assert out.returncode == 1 and "UNAVAILABLE" in out.stderr and "Traceback" not in out.stderr


def test_watch_ctrl_c_prints_the_counters(agents: list[AgentProcess], tmp_path: Path) -> None:
    c = agents[0].client()
    c.create_trace(
        "apiVersion: syshub.io/v1alpha1\nkind: Trace\nmetadata: {name: idle}\n"
        "spec: {syscalls: [getppid], hostSelector: [nothing-here]}\n"
    )
    try:
        watch = subprocess.Popen(
            [sys.executable, "-m", "syshub.cli", "watch", "idle", "--agent", agents[0].target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: bool(c.stats("idle").streams), timeout=20)
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=20)
        assert watch.returncode == 130, stderr
        assert "Traceback" not in stderr
    finally:
        c.delete_trace("idle")
