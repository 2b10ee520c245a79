"""floor: syshub against the hook floor (issue 15). A getppid loop and an
openat loop, each (a) untraced, (b) traced by count-only programs on the same
per-syscall tracepoints (benches/ceiling/floor.bpf.c; for openat the enter
program also reads the path, 256 bytes, as syshub's default capture does),
(c) traced by syshub with the Python batch consumer (every call delivered,
path capture on for openat), (d) the C + libbpf ceiling (getppid only).

The openat loop opens a path that does not exist (ENOENT): one call per
iteration, no descriptor and so no close() to muddy the per-call figures."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import syshub
from benches import bpfstats, build
from benches.common import (
    NOT_AVAILABLE,
    Check,
    Context,
    ScenarioResult,
    Table,
    Target,
    drain,
    fmt_int,
    fmt_rate,
    key_checks,
    key_totals,
    median,
)
from benches.scenarios.peers import PeerError, run_ceiling
from benches.scenarios.throughput import DEFAULT_RING, BatchConsumer
from benches.workload import Loop

MISSING_PATH = "/dev/shm/syshub-bench-absent"
SYSCALLS = ("getppid", "openat")
TARGET_RATIO = 0.80
READER_THREAD = "syshub-reader"
VARIANTS = {
    "untraced": "(a) untraced",
    "floor": "(b) floor: count-only on the same tracepoints",
    "syshub": "(c) syshub, batch consumer",
    "ceiling": "(d) C + libbpf ceiling",
}


def _loop(ctx: Context, mode: str, secs: float) -> Loop:
    extra = ["--path", MISSING_PATH] if mode == "openat" else []
    return Loop(ctx, mode, secs=secs, extra=extra)


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _ns(rate: float) -> float:
    return 1e9 / rate if rate > 0 else float("nan")


def _children_cpu_s() -> float:
    """CPU seconds of this process's waited-for children and their waited-for
    children: the loop's CPU time once its helper has been reaped."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def startup_cpu_s(ctx: Context) -> float:
    """CPU seconds of a loop run that makes no call (the namespace helper's
    Python start and the loop's exec), the median of three: subtracted from
    each run's children CPU to leave the loop's calls."""
    xs = []
    for _ in range(3):
        c0 = _children_cpu_s()
        with Loop(ctx, "getppid", count=0) as loop:
            loop.start()
            loop.finish()
        xs.append(_children_cpu_s() - c0)
    return median(xs)


def _with_cpu(m: dict[str, Any], children_cpu_s: float, startup_s: float) -> dict[str, Any]:
    """Add the loop's CPU ns per call: CPU time is what other load on the
    machine does not stretch, as it does wall-clock rates (the BPF programs
    run in the loop's syscalls, so their time is the loop's system time)."""
    cpu = max(children_cpu_s - startup_s, 0.0)
    m["loop_cpu_s"] = cpu
    m["cpu_ns_per_call"] = cpu * 1e9 / m["calls"] if m["calls"] else float("nan")
    return m


def run_untraced(ctx: Context, mode: str, secs: float) -> dict[str, Any]:
    with _loop(ctx, mode, secs) as loop:
        loop.start()
        rep = loop.finish()
    return {"calls_per_s": rep.calls_per_s, "calls": rep.calls, "loop": rep.to_json()}


# (b) the floor --------------------------------------------------------------


def run_floor(
    ctx: Context, floor: tuple[Path, Path], mode: str, secs: float, label: str
) -> tuple[dict[str, Any], Check]:
    """One loop run under the floor loader; the hook counts are host-wide
    (the floor filters nothing), so they cover the loop's calls and a few
    more: a non-strict check shows it."""
    exe, obj = floor
    with _loop(ctx, mode, secs) as loop:
        cons = subprocess.Popen(
            [str(exe), str(obj), "--syscall", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert cons.stdout is not None
            first = cons.stdout.readline().strip()
            if first != "ready":
                cons.kill()
                _, err = cons.communicate()
                raise PeerError(f"floor loader did not start: {first!r} {err.strip()}")
            loop.start()
            rep = loop.finish()
            cons.send_signal(signal.SIGINT)
            out, err = cons.communicate(timeout=30)
        finally:
            if cons.poll() is None:
                cons.kill()
                cons.wait()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise PeerError(f"floor loader printed no result: {err.strip()}")
    d: dict[str, Any] = json.loads(lines[-1])
    m = {
        "calls_per_s": rep.calls_per_s,
        "calls": rep.calls,
        "enter_runs": d["enter"],
        "exit_runs": d["exit"],
        "path_faults": d["path_faults"],
        "loader_cpu_s": d["cpu_s"],
        "loop": rep.to_json(),
    }
    check = Check(
        label=f"{label}: floor enter hook ran for every loop call (host-wide count, shown only)",
        matched=rep.calls,
        delivered=min(int(d["enter"]), rep.calls),
        dropped=0,
        sampled_out=0,
        strict=False,
    )
    return m, check


# (c) syshub -------------------------------------------------------------------


def _reader_tids() -> set[int]:
    """Threads of this process named like the probe's ring reader."""
    tids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == READER_THREAD:
            tids.add(int(tid))
    return tids


def _new_reader_tids(before: set[int], timeout_s: float = 1.0) -> set[int]:
    """The reader threads started since ``before``: a thread names itself once
    it runs, so a new probe's reader may take a moment to show its name."""
    end = time.monotonic() + timeout_s
    while True:
        new = _reader_tids() - before
        if new or time.monotonic() >= end:
            return new
        time.sleep(0.005)


def _thread_cpu_s(tids: set[int]) -> float:
    """CPU seconds of some threads of this process: schedstat's run time in
    ns where the kernel has it, else utime + stime in clock ticks."""
    total = 0.0
    for tid in tids:
        base = f"/proc/self/task/{tid}"
        try:
            total += int(Path(f"{base}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            with open(f"{base}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_syshub(
    ctx: Context,
    mode: str,
    secs: float,
    label: str,
    on_attached: Callable[[set[int]], Any] | None = None,
) -> tuple[dict[str, Any], list[Check]]:
    """One loop run traced by syshub (one filter: the loop's pid namespace and
    ``mode``, default captures), every event delivered to the batch consumer.
    ``on_attached(program ids)`` may return a context manager around the
    timed part (the bpf_stats runs use it)."""
    progs0 = bpfstats.all_ids() if on_attached else set()
    readers0 = _reader_tids()
    probe = syshub.Probe(DEFAULT_RING)
    consumer = BatchConsumer()
    try:
        readers = _new_reader_tids(readers0)
        with _loop(ctx, mode, secs) as loop:
            probe.add_filter(loop.pid_ns, mode)
            hooked = probe.hooked()
            around = on_attached(bpfstats.all_ids() - progs0) if on_attached else nullcontext()
            with around:
                r0, c0, p0 = _thread_cpu_s(readers), time.thread_time(), time.process_time()
                loop.start()
                while loop.running():
                    b = probe.poll(timeout_ms=50)
                    if b:
                        consumer(b)
                rep = loop.finish()
            drained = drain(probe, consumer)
            reader_cpu = _thread_cpu_s(readers) - r0
            consumer_cpu = time.thread_time() - c0
            process_cpu = time.process_time() - p0
            stats = probe.stats()
            tot = key_totals(stats, {loop.pid_ns})
            checks = key_checks(stats, {loop.pid_ns}, label)
    finally:
        probe.close()
    delivered = tot["delivered"]
    per_m = 1e6 / delivered if delivered else float("nan")
    checks.append(Check(f"{label}: every loop call matched", rep.calls, tot["matched"], 0, 0))
    checks.append(
        Check(f"{label}: consumer saw every delivered event", delivered, consumer.count, 0, 0)
    )
    m: dict[str, Any] = {
        "calls_per_s": rep.calls_per_s,
        "calls": rep.calls,
        **{k: tot[k] for k in ("matched", "delivered", "dropped", "sampled_out")},
        "drained": drained,
        "reader_threads": len(readers),
        "reader_cpu_s": reader_cpu,
        "consumer_thread_cpu_s": consumer_cpu,
        "process_cpu_s": process_cpu,
        "reader_cpu_ms_per_m_events": reader_cpu * 1e3 * per_m,
        "consumer_cpu_ms_per_m_events": consumer_cpu * 1e3 * per_m,
        "process_cpu_ms_per_m_events": process_cpu * 1e3 * per_m,
        "process_minus_consumer_cpu_ms_per_m_events": (process_cpu - consumer_cpu) * 1e3 * per_m,
        "hooked": hooked,
        "reader": dataclasses.asdict(stats.reader),
        "loop": rep.to_json(),
    }
    return m, checks


# bpf_stats (diagnostic) -------------------------------------------------------


@contextmanager
def _costs_into(out: dict[str, Any], ids: set[int]) -> Iterator[None]:
    """Kernel BPF statistics on around the timed part; the programs' run
    counts and times between entry and exit go into ``out``."""
    with bpfstats.stats_enabled():
        start = bpfstats.run_costs(ids)
        yield
        out.update(bpfstats.run_delta(start, bpfstats.run_costs(ids)))


def floor_costs(floor: tuple[Path, Path], ctx: Context, mode: str, secs: float) -> dict[str, Any]:
    """{programs: {name: runs, ns_per_run}, calls: the loop's calls}."""
    exe, obj = floor
    out: dict[str, Any] = {}
    with _loop(ctx, mode, secs) as loop:
        before = bpfstats.all_ids()
        cons = subprocess.Popen(
            [str(exe), str(obj), "--syscall", mode], stdout=subprocess.PIPE, text=True
        )
        try:
            assert cons.stdout is not None
            if cons.stdout.readline().strip() != "ready":
                raise PeerError("floor loader did not start")
            with _costs_into(out, bpfstats.all_ids() - before):
                loop.start()
                rep = loop.finish()
            cons.send_signal(signal.SIGINT)
            cons.communicate(timeout=30)
        finally:
            if cons.poll() is None:
                cons.kill()
                cons.wait()
    return {"programs": out, "calls": rep.calls}


def syshub_costs(ctx: Context, mode: str, secs: float) -> tuple[dict[str, Any], list[Check]]:
    """As :func:`floor_costs`, for syshub's programs, and the run's checks."""
    out: dict[str, Any] = {}
    m, checks = run_syshub(ctx, mode, secs, f"bpf_stats {mode}", lambda i: _costs_into(out, i))
    return {"programs": out, "calls": m["calls"]}, checks


# the scenario -----------------------------------------------------------------


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    secs: float = s.pick(0.2, 2.0)
    reps: int = s.pick(1, 5)
    stats_on = bpfstats.SYSCTL.exists() and bpfstats.SYSCTL.read_text().strip() != "0"
    res = ScenarioResult(
        name="floor",
        title="syshub against the hook floor (issue 15)",
        description=(
            "A getppid loop and an openat loop (openat of a missing path: ENOENT, one call "
            "per iteration, no close), pinned to CPU 0 in their own pid namespace: "
            "(a) untraced; (b) the floor: count-only programs on the same per-syscall "
            "tracepoints syshub uses (a per-CPU counter increment; the openat enter program "
            "also reads the path, 256 bytes, into a per-CPU buffer), no filter; (c) syshub "
            "with the Python batch consumer (one filter: the loop's namespace, default "
            "captures: the openat path); (d) the C + libbpf ceiling (getppid). Variants "
            "alternate per repetition; medians; ns/call = 1e9 / rate; added = ns - ns(a); "
            "syshub / floor = rate(c) / rate(b). Reader CPU: the probe's ring reader thread "
            f"(found by its name {READER_THREAD!r} in /proc/self/task; schedstat run time) "
            "from the loop's start to the end of the drain, per million events delivered. "
            "CPU ns/call: the loop's own CPU time per call (getrusage RUSAGE_CHILDREN around "
            "the run, less a no-call run's start-up and the floor loader's own CPU; the BPF "
            "programs run in the loop's syscalls, so they are in it), which other load on the "
            "machine stretches less than wall time; floor CPU / CPU is the ratio on that basis."
        ),
        params={
            "secs": secs,
            "reps": reps,
            "ring_bytes": DEFAULT_RING,
            "openat_path": MISSING_PATH,
            "path_bytes_read_by_floor": 256,
            "bpf_stats_enabled_during_timed_runs": stats_on,
        },
    )
    if stats_on:
        res.notes.append(
            "kernel.bpf_stats_enabled was 1 during the timed runs: every BPF program run "
            "also paid the statistics' clock reads (floor and syshub alike)."
        )
    try:
        floor = build.build_floor(s.cache_dir)
    except build.BuildError as e:
        res.status = NOT_AVAILABLE
        res.note = f"floor programs not built: {e}"
        return res
    if Path(MISSING_PATH).exists():
        os.unlink(MISSING_PATH)

    startup = startup_cpu_s(ctx)
    res.params["startup_cpu_s_subtracted"] = startup
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc: {v: [] for v in VARIANTS if v != "ceiling" or sc == "getppid"} for sc in SYSCALLS
    }
    if ctx.ceiling is None:
        del runs["getppid"]["ceiling"]
        res.notes.append(f"(d) ceiling skipped: {ctx.ceiling_note}")
    for rep in range(reps):
        for sc, by_variant in runs.items():
            tag = f"{sc} rep {rep + 1}"
            for v in by_variant:
                c0 = _children_cpu_s()
                if v == "untraced":
                    m = run_untraced(ctx, sc, secs)
                elif v == "floor":
                    m, check = run_floor(ctx, floor, sc, secs, f"floor {tag}")
                    res.checks.append(check)
                elif v == "syshub":
                    m, checks = run_syshub(ctx, sc, secs, f"syshub {tag}")
                    res.checks += checks
                else:
                    cm, check = run_ceiling(ctx, secs)
                    check.label = f"ceiling {tag}"
                    res.checks.append(check)
                    m = {**cm, "calls_per_s": cm["loop_calls_per_s"]}
                if v != "ceiling":  # its consumer is a child too: its CPU would count
                    own = m.get("loader_cpu_s", 0.0)  # the floor's loader is a child
                    _with_cpu(m, _children_cpu_s() - c0 - own, startup)
                by_variant[v].append(m)
            ctx.say(
                f"floor: {tag}/{reps}: "
                + ", ".join(f"{v} {fmt_rate(by_variant[v][-1]['calls_per_s'])}" for v in by_variant)
            )

    costs: dict[str, dict[str, Any]] = {}
    why = bpfstats.available()
    if why is None:
        for sc in SYSCALLS:
            sy, checks = syshub_costs(ctx, sc, secs)
            res.checks += checks
            costs[sc] = {"floor": floor_costs(floor, ctx, sc, secs), "syshub": sy}
    else:
        res.notes.append(f"bpf_stats table skipped: {why}")
    _report(res, runs, costs)
    return res


def _report(
    res: ScenarioResult,
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    costs: dict[str, dict[str, Any]],
) -> None:
    summary: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for sc, by_variant in runs.items():
        rate = {v: median(r["calls_per_s"] for r in rs) for v, rs in by_variant.items()}
        base_ns = _ns(rate["untraced"])
        paired = median(
            c["calls_per_s"] / f["calls_per_s"]
            for c, f in zip(by_variant["syshub"], by_variant["floor"], strict=True)
        )
        sy = by_variant["syshub"]
        cpu = {
            v: median(r["cpu_ns_per_call"] for r in rs)
            for v, rs in by_variant.items()
            if v != "ceiling"
        }
        cpu_paired = median(
            f["cpu_ns_per_call"] / c["cpu_ns_per_call"]
            for c, f in zip(sy, by_variant["floor"], strict=True)
            if c["cpu_ns_per_call"] > 0
        )
        d: dict[str, Any] = {
            "calls_per_s": rate,
            "ns_per_call": {v: _ns(r) for v, r in rate.items()},
            "added_ns": {v: _ns(r) - base_ns for v, r in rate.items()},
            "syshub_over_floor": rate["syshub"] / rate["floor"],
            "syshub_over_floor_paired": paired,
            "syshub_ns_beyond_floor": _ns(rate["syshub"]) - _ns(rate["floor"]),
            "cpu_ns_per_call": cpu,
            "cpu_added_ns": {v: x - cpu["untraced"] for v, x in cpu.items()},
            "syshub_over_floor_cpu": cpu["floor"] / cpu["syshub"] if cpu["syshub"] > 0 else None,
            "syshub_over_floor_cpu_paired": cpu_paired,
            "dropped_total": sum(int(r["dropped"]) for r in sy),
            "matched_total": sum(int(r["matched"]) for r in sy),
            "delivered_total": sum(int(r["delivered"]) for r in sy),
            "reader_cpu_ms_per_m_events": median(r["reader_cpu_ms_per_m_events"] for r in sy),
            "consumer_cpu_ms_per_m_events": median(r["consumer_cpu_ms_per_m_events"] for r in sy),
            "process_cpu_ms_per_m_events": median(r["process_cpu_ms_per_m_events"] for r in sy),
            "process_minus_consumer_cpu_ms_per_m_events": median(
                r["process_minus_consumer_cpu_ms_per_m_events"] for r in sy
            ),
            "reader_thread_found": all(r["reader_threads"] == 1 for r in sy),
            "path_faults_floor": sum(int(r["path_faults"]) for r in by_variant["floor"]),
        }
        summary[sc] = d
        if not d["reader_thread_found"]:
            res.notes.append(
                f"{sc}: the reader thread ({READER_THREAD!r}) was not found in every run (or more "
                "than one was): its column is not the reader alone; the process - consumer "
                "column is the cross-check."
            )
        for v, rs in by_variant.items():
            ratio = rate[v] / rate["floor"]
            has_cpu = v in cpu
            rows.append(
                [
                    sc,
                    VARIANTS[v],
                    fmt_rate(rate[v]),
                    f"{_ns(rate[v]):.1f}",
                    "-" if v == "untraced" else f"{d['added_ns'][v]:+.1f}",
                    f"{ratio:.3f}" + (f" (paired {paired:.3f})" if v == "syshub" else ""),
                    f"{cpu[v]:.1f}" if has_cpu else "-",
                    f"{d['cpu_added_ns'][v]:+.1f}" if has_cpu and v != "untraced" else "-",
                    f"{cpu['floor'] / cpu[v]:.3f}" if has_cpu and cpu[v] > 0 else "-",
                    " / ".join(fmt_rate(r["calls_per_s"]) for r in rs),
                ]
            )
        res.targets.append(
            Target(
                what=f"syshub / floor, {sc} loop, every call delivered",
                target=f">= {TARGET_RATIO:.2f} with 0 drops",
                value=round(d["syshub_over_floor"], 3),
                unit="x floor calls/s",
                met=d["syshub_over_floor"] >= TARGET_RATIO and d["dropped_total"] == 0,
                note=(
                    f"syshub {_ns(rate['syshub']):.0f} ns/call, floor {_ns(rate['floor']):.0f}, "
                    f"untraced {base_ns:.0f}; paired ratio {paired:.3f}; by the loop's CPU "
                    f"time per call {_fmt(d['syshub_over_floor_cpu'])} (paired "
                    f"{_fmt(cpu_paired)}); dropped {d['dropped_total']:,} of "
                    f"{d['matched_total']:,}"
                ),
            )
        )
    res.tables.append(
        Table(
            title="Calls/s and ns per call (median of repetitions)",
            columns=[
                "loop",
                "variant",
                "calls/s",
                "ns/call",
                "added ns vs (a)",
                "rate / floor",
                "CPU ns/call",
                "CPU added ns",
                "floor CPU / CPU",
                "calls/s per repetition",
            ],
            rows=rows,
        )
    )
    res.tables.append(
        Table(
            title="syshub runs: accounting and CPU per million events delivered (median)",
            columns=[
                "loop",
                "delivered",
                "dropped / matched",
                "reader thread CPU ms / M",
                "consumer thread CPU ms / M",
                "process CPU ms / M",
                "process - consumer CPU ms / M",
                "floor path reads failed",
            ],
            rows=[
                [
                    sc,
                    fmt_int(d["delivered_total"]),
                    f"{fmt_int(d['dropped_total'])} / {fmt_int(d['matched_total'])}",
                    f"{d['reader_cpu_ms_per_m_events']:.1f}",
                    f"{d['consumer_cpu_ms_per_m_events']:.1f}",
                    f"{d['process_cpu_ms_per_m_events']:.1f}",
                    f"{d['process_minus_consumer_cpu_ms_per_m_events']:.1f}",
                    fmt_int(d["path_faults_floor"]),
                ]
                for sc, d in summary.items()
            ],
        )
    )
    cost_rows: list[list[Any]] = []
    for sc, by in costs.items():
        for variant, c in by.items():
            progs = c["programs"]
            for name, p in sorted(progs.items()):
                cost_rows.append(
                    [sc, variant, name, fmt_int(int(p["runs"])), f"{p['ns_per_run']:.1f}"]
                )
            # intent: every run of these programs during the loop, per loop call
            total = sum(p["runs"] * p["ns_per_run"] for p in progs.values())
            per_call = total / c["calls"] if c["calls"] else float("nan")
            cost_rows.append(
                [
                    sc,
                    variant,
                    "all programs, ns per loop call",
                    fmt_int(c["calls"]),
                    f"{per_call:.1f}",
                ]
            )
            summary[sc].setdefault("bpf_ns_per_call", {})[variant] = per_call
    if cost_rows:
        res.tables.append(
            Table(
                title="BPF run time per program (kernel.bpf_stats_enabled, one run each; runs "
                "are host-wide on these tracepoints)",
                columns=["loop", "variant", "program", "runs", "ns per run"],
                rows=cost_rows,
            )
        )
    res.metrics = {"summary": summary, "runs": runs, "bpf_costs": costs}
