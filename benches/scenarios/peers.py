"""peers: the same getppid loop under syshub, a minimal C + libbpf consumer
of the same kernel design (the practical ceiling), bpftrace, perf trace and
strace. Each tool's output goes to a tmpfs file so that events can be counted
exactly (the loop's own count is the number of calls made)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benches import bpfstats
from benches.common import (
    Chart,
    Check,
    Context,
    ScenarioResult,
    Table,
    fmt_int,
    fmt_rate,
    median,
)
from benches.scenarios.throughput import DEFAULT_RING, BatchConsumer, traced_run
from benches.workload import Loop, LoopReport, run_untraced

TMP_BASE = "/dev/shm" if os.path.isdir("/dev/shm") else None


class PeerError(Exception):
    pass


def _wait_for(pred: Any, timeout: float, what: str, proc: subprocess.Popen[Any]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            raise PeerError(f"{what}: the tool exited early with {proc.returncode}")
        time.sleep(0.02)
    raise PeerError(f"{what}: not ready after {timeout:.0f} s")


def _has_perf_fds(pid: int) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if "perf_event" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                return True
        except OSError:
            continue
    return False


def _bpf_tracepoint_attached(pid: int, tracepoint: str) -> bool:
    """True once process ``pid`` has a BPF program on ``tracepoint`` (bpftool perf show)."""
    r = subprocess.run(["bpftool", "perf", "show", "--json"], capture_output=True, text=True)
    try:
        links: list[dict[str, Any]] = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return False
    return any(x.get("pid") == pid and x.get("tracepoint") == tracepoint for x in links)


def _stop(proc: subprocess.Popen[Any], grace: float = 0.3) -> None:
    time.sleep(grace)  # let the tool drain what it has buffered
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _peer_row(
    tool: str, report: LoopReport, seen: int, lost: int, note: str = ""
) -> tuple[dict[str, Any], Check]:
    m = {
        "tool": tool,
        "loop_calls_per_s": report.calls_per_s,
        "calls": report.calls,
        "events_seen": seen,
        "lost_reported": lost,
        "unaccounted": report.calls - seen - lost,
        "loop": report.to_json(),
        "note": note,
    }
    return m, Check(f"{tool} (peer)", report.calls, seen, lost, 0, strict=False)


def run_bpftrace(ctx: Context, secs: float, tmp: Path) -> tuple[dict[str, Any], Check]:
    out, err = tmp / "bpftrace.out", tmp / "bpftrace.err"
    with Loop(ctx, "getppid", secs=secs) as loop, err.open("w") as errf:
        prog = (
            f'tracepoint:syscalls:sys_enter_getppid /pid == {loop.pid}/ {{ printf("%d\\n", pid); }}'
        )
        bt = subprocess.Popen(
            ["bpftrace", "-o", str(out), "-e", prog], stdout=errf, stderr=errf, text=True
        )
        try:
            # bpftrace buffers its -o file: watch for the attached program instead
            if shutil.which("bpftool"):
                _wait_for(
                    lambda: _bpf_tracepoint_attached(bt.pid, "sys_enter_getppid"),
                    60,
                    "bpftrace",
                    bt,
                )
            else:
                _wait_for(lambda: _has_perf_fds(bt.pid), 60, "bpftrace", bt)
                time.sleep(3.0)
            loop.start()
            report = loop.finish()
        finally:
            _stop(bt)
    text = out.read_text()
    seen = sum(1 for line in text.splitlines() if line.strip().isdigit())
    lost = sum(int(n) for n in re.findall(r"Lost (\d+) events", text + err.read_text()))
    return _peer_row("bpftrace", report, seen, lost, "printf per event, filter /pid == X/")


def run_perf(ctx: Context, secs: float, tmp: Path) -> tuple[dict[str, Any], Check]:
    out, err = tmp / "perf.out", tmp / "perf.err"
    with Loop(ctx, "getppid", secs=secs) as loop, err.open("w") as errf:
        pt = subprocess.Popen(
            ["perf", "trace", "-e", "getppid", "-p", str(loop.pid), "-o", str(out)],
            stdout=errf,
            stderr=errf,
        )
        try:
            _wait_for(lambda: _has_perf_fds(pt.pid), 30, "perf trace", pt)
            time.sleep(0.5)  # no ready signal: give it time to enable every event
            loop.start()
            report = loop.finish()
        finally:
            _stop(pt)
    text = out.read_text() if out.exists() else ""
    seen = sum(1 for line in text.splitlines() if "getppid(" in line)
    lost = sum(int(n) for n in re.findall(r"LOST (\d+) events", text + err.read_text()))
    return _peer_row("perf trace", report, seen, lost, "-e getppid -p PID")


def run_strace(ctx: Context, secs: float, tmp: Path) -> tuple[dict[str, Any], Check]:
    out = tmp / "strace.out"
    wrapper = ["strace", "-f", "-e", "trace=getppid", "-o", str(out), "--"]
    with Loop(ctx, "getppid", secs=secs, wrapper=wrapper) as loop:
        loop.start()
        report = loop.finish()
    seen = sum(1 for line in out.read_text().splitlines() if "getppid(" in line)
    return _peer_row("strace", report, seen, 0, "-f -e trace=getppid; stops the tracee per call")


def run_ceiling(
    ctx: Context, secs: float, with_stats: bool = False
) -> tuple[dict[str, Any], Check]:
    """One run of the C + libbpf ceiling; ``with_stats`` also reads its BPF
    programs' run time (diagnostic: the statistics cost a little)."""
    assert ctx.ceiling is not None
    exe, obj = ctx.ceiling
    cpus = ctx.settings.consumer_cpus
    names = {"ceiling_enter", "ceiling_exit"}
    before = bpfstats.program_ids(names) if with_stats else set()
    costs: dict[str, dict[str, float]] = {}
    with Loop(ctx, "getppid", secs=secs) as loop:
        argv = [str(exe), str(obj), "--pid-ns", str(loop.pid_ns), "--ring-bytes", str(DEFAULT_RING)]
        if cpus:
            argv += ["--cpu", str(min(cpus))]
        cons = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert cons.stdout is not None
            first = cons.stdout.readline().strip()
            if first != "ready":
                cons.kill()
                _, e = cons.communicate()
                raise PeerError(f"ceiling consumer did not start: {first!r} {e.strip()}")
            if with_stats:
                ours = bpfstats.program_ids(names) - before
                with bpfstats.stats_enabled():
                    loop.start()
                    report = loop.finish()
                    costs = bpfstats.run_costs(ours)
            else:
                loop.start()
                report = loop.finish()
            cons.send_signal(signal.SIGINT)
            stdout, stderr = cons.communicate(timeout=30)
        finally:
            if cons.poll() is None:
                cons.kill()
                cons.wait()
    lines = [x for x in stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise PeerError(f"ceiling consumer printed no result: {stderr.strip()}")
    d: dict[str, Any] = json.loads(lines[-1])
    m = {
        "tool": "C + libbpf ceiling",
        "loop_calls_per_s": report.calls_per_s,
        "calls": report.calls,
        "matched": d["matched"],
        "events_seen": d["records"],
        "lost_reported": d["dropped"],
        "delivered_per_loop_s": d["records"] / report.secs,
        "seq_errors": d["seq_errors"],
        "consumer": d,
        "loop": report.to_json(),
        "bpf_programs": costs,
    }
    check = Check("C + libbpf ceiling", d["matched"], d["records"], d["dropped"], 0)
    return m, check


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    secs: float = s.pick(0.3, 2.0)
    reps: int = s.pick(1, 5)
    res = ScenarioResult(
        name="peers",
        title="Peers on the same getppid loop",
        description=(
            "The getppid loop (own pid namespace, CPU 0) traced by syshub (Python batch "
            "consumer), by a C + libbpf consumer of the same kernel design (the practical "
            "ceiling: per-syscall tracepoints on getppid enter+exit, one 96-byte record per "
            "call, BPF_RB_NO_WAKEUP until 256 KiB is pending, filter on the pid namespace), "
            "and by bpftrace, perf trace and strace. syshub and the ceiling alternate over "
            "repetitions (medians); the other tools run once. Tool output goes to a tmpfs file "
            "so events seen can be counted exactly."
        ),
        params={"secs": secs, "reps": reps},
    )
    untraced = run_untraced(ctx, "getppid", secs)
    base = untraced.calls_per_s
    ctx.say(f"peers: untraced loop {fmt_rate(base)} calls/s")
    syshub_runs: list[dict[str, Any]] = []
    ceiling_runs: list[dict[str, Any]] = []
    for rep in range(reps):
        m, checks = traced_run(ctx, BatchConsumer(), DEFAULT_RING, secs, f"syshub rep {rep + 1}")
        syshub_runs.append(m)
        res.checks += checks
        ctx.say(f"peers: syshub rep {rep + 1}: {fmt_rate(m['loop_calls_per_s'])} calls/s")
        if ctx.ceiling is not None:
            cm, check = run_ceiling(ctx, secs)
            ceiling_runs.append(cm)
            res.checks.append(check)
            ctx.say(f"peers: ceiling rep {rep + 1}: {fmt_rate(cm['loop_calls_per_s'])} calls/s")

    ceiling_cost: dict[str, Any] = {}
    if ctx.ceiling is not None:
        why = bpfstats.available()
        if why:
            ceiling_cost = {"note": f"skipped: {why}"}
        else:
            cm, check = run_ceiling(ctx, secs, with_stats=True)
            res.checks.append(check)
            progs = cm["bpf_programs"]
            ceiling_cost = {
                "programs": progs,
                "ns_per_call_in_bpf": sum(c["ns_per_run"] for c in progs.values()),
                "loop_calls_per_s_with_stats": cm["loop_calls_per_s"],
            }
            ctx.say(
                f"peers: ceiling BPF programs {ceiling_cost['ns_per_call_in_bpf']:.0f} ns per call"
            )

    syshub_rate = median(r["loop_calls_per_s"] for r in syshub_runs)
    rows: list[list[Any]] = [["untraced", fmt_rate(base), "1.000", "-", "-", "-", "-", ""]]
    chart_x = ["untraced"]
    chart_y: list[float | None] = [base]

    def row(tool: str, rate: float, seen: int, lost: int, unacc: int, note: str) -> None:
        rows.append(
            [
                tool,
                fmt_rate(rate),
                f"{rate / base:.3f}",
                f"{rate / syshub_rate:.3f}",
                fmt_int(seen),
                fmt_int(lost),
                fmt_int(unacc),
                note,
            ]
        )
        chart_x.append(tool)
        chart_y.append(rate)

    row(
        "syshub (Python batch consumer)",
        syshub_rate,
        sum(r["delivered"] for r in syshub_runs),
        sum(r["dropped"] for r in syshub_runs),
        sum(r["matched"] - r["delivered"] - r["dropped"] for r in syshub_runs),
        f"median of {len(syshub_runs)}",
    )
    peers: dict[str, Any] = {}
    if ctx.ceiling is not None:
        ceiling_rate = median(r["loop_calls_per_s"] for r in ceiling_runs)
        row(
            "C + libbpf ceiling",
            ceiling_rate,
            sum(r["events_seen"] for r in ceiling_runs),
            sum(r["lost_reported"] for r in ceiling_runs),
            sum(r["matched"] - r["events_seen"] - r["lost_reported"] for r in ceiling_runs),
            f"median of {len(ceiling_runs)}",
        )
        peers["ceiling"] = {
            "loop_calls_per_s": ceiling_rate,
            "runs": ceiling_runs,
            "bpf_cost": ceiling_cost,
        }
    else:
        rows.append(["C + libbpf ceiling", "-", "-", "-", "-", "-", "-", ctx.ceiling_note])
        res.notes.append(f"ceiling skipped: {ctx.ceiling_note}")
        peers["ceiling"] = {"skipped": ctx.ceiling_note}

    tools = [
        ("bpftrace", "bpftrace", run_bpftrace),
        ("perf trace", "perf", run_perf),
        ("strace", "strace", run_strace),
    ]
    with tempfile.TemporaryDirectory(prefix="syshub-peers-", dir=TMP_BASE) as td:
        for tool, binary, fn in tools:
            if shutil.which(binary) is None:
                note = f"skipped: {binary} not installed"
                rows.append([tool, "-", "-", "-", "-", "-", "-", note])
                res.notes.append(f"{tool} {note}")
                peers[tool] = {"skipped": note}
                continue
            try:
                pm, check = fn(ctx, secs, Path(td))
            except Exception as e:
                note = f"skipped: {e}"
                rows.append([tool, "-", "-", "-", "-", "-", "-", note])
                res.notes.append(f"{tool} {note}")
                peers[tool] = {"skipped": note}
                continue
            peers[tool] = pm
            res.checks.append(check)
            row(
                tool,
                pm["loop_calls_per_s"],
                pm["events_seen"],
                pm["lost_reported"],
                pm["unaccounted"],
                pm["note"],
            )
            ctx.say(
                f"peers: {tool}: {fmt_rate(pm['loop_calls_per_s'])} calls/s, "
                f"lost {pm['lost_reported']}, unaccounted {pm['unaccounted']}"
            )

    res.tables.append(
        Table(
            title=f"getppid loop under each tracer, {secs:g} s runs",
            columns=[
                "tracer",
                "loop calls/s",
                "vs untraced",
                "vs syshub",
                "events seen",
                "lost (reported)",
                "unaccounted",
                "note",
            ],
            rows=rows,
        )
    )
    res.metrics = {
        "untraced": untraced.to_json(),
        "syshub": {"loop_calls_per_s": syshub_rate, "runs": syshub_runs},
        **peers,
    }
    if ctx.ceiling is not None:
        ratio = syshub_rate / peers["ceiling"]["loop_calls_per_s"]
        res.metrics["syshub_vs_ceiling"] = ratio
    res.charts.append(
        Chart(
            file="peers.png",
            title="getppid loop calls/s under each tracer (log scale)",
            kind="bar",
            x=chart_x,
            series={"loop calls/s": chart_y},
            ylabel="calls/s",
            logy=True,
        )
    )
    return res
