"""idle: what syshub costs a syscall it does NOT trace.

ns per getppid of an untraced loop while (a) nothing is loaded, (b) a probe
is loaded with no filters, (c) the probe traces openat in another pid
namespace (an idle ``sleep``), (d) node-wide syscall metrics on, counting
(the metrics program counts every syscall of the host: one exit hook), (e) a
bare raw_tp sys_enter + sys_exit pair (two empty programs: the floor any
enter+exit design pays), (f) node-wide metrics with latency (entry hook, task
slot, two clock reads: the histogram's price). Variants alternate a, b, c,
d, e, f, a, b, ... in one run."""

from __future__ import annotations

import subprocess
from typing import Any

import syshub
from benches import bpfstats
from benches.common import (
    Chart,
    Check,
    Context,
    ScenarioResult,
    Table,
    Target,
    drain,
    key_checks,
    median,
)
from benches.workload import Loop, LoopReport
from syshub.metrics import BareHooks, Metrics
from syshub.nsproc import NamespacedProcess

VARIANTS = {
    "a": "nothing loaded",
    "b": "probe loaded, no filters",
    "c": "probe tracing openat in another pid namespace",
    "d": "node-wide syscall metrics on (counts, errnos)",
    "e": "bare raw_tp sys_enter + sys_exit pair (empty programs)",
    "f": "node-wide syscall metrics with latency histograms",
}
GETPPID = 110
TARGET_C = 0.80


def _measure(ctx: Context, secs: float) -> LoopReport:
    with Loop(ctx, "getppid", secs=secs) as loop:
        loop.start()
        return loop.finish()


def _getppids(m: Metrics, pid_ns: int) -> int:
    return sum(r.count for r in m.snapshot().rows if r.pid_ns == pid_ns and r.nr == GETPPID)


def _measure_metrics(
    ctx: Context, secs: float, label: str, latency: bool
) -> tuple[LoopReport, Check]:
    """(d)/(f): the loop under node-wide metrics, and how many of its getppid
    calls the metrics counted (matched = the loop's own count), net of what
    the map held for the loop's namespace inode before the loop started: a
    new namespace takes the lowest free inode, often one a namespace of
    another process had while the metrics were on (that was the 'surplus'
    of earlier loaded runs)."""
    with Metrics("node", latency=latency) as m, Loop(ctx, "getppid", secs=secs) as loop:
        before = _getppids(m, loop.pid_ns)
        loop.start()
        rep = loop.finish()
        counted = _getppids(m, loop.pid_ns) - before
    return rep, Check(
        label=f"{label}: metrics getppid count = loop calls",
        matched=rep.calls,
        delivered=counted,
        dropped=0,
        sampled_out=0,
    )


MX_PROGS = {"syshub_mx_exit", "syshub_mx_task_exit"}
MX_LATENCY_PROGS = MX_PROGS | {"syshub_mx_enter"}
BARE_PROGS = {"syshub_mx_bare_enter", "syshub_mx_bare_exit"}


def _bpf_ns(ctx: Context, secs: float, open_hooks: Any, names: set[str]) -> float:
    """BPF run time per syscall (enter + exit program) while ``open_hooks()``
    is attached: the kernel's own per-program statistics, which other load
    on the machine does not inflate as it does wall-clock rates."""
    before = bpfstats.program_ids(names)
    with open_hooks():
        ours = bpfstats.program_ids(names) - before
        with Loop(ctx, "getppid", secs=secs) as loop, bpfstats.stats_enabled():
            start = bpfstats.run_costs(ours)
            loop.start()
            rep = loop.finish()
            end = bpfstats.run_costs(ours)
    # intent: the programs' time over the runs of the busiest one (every
    # syscall of the host runs it, not only the loop's): per syscall, all
    # hooks together (a thread-exit hook runs rarely and adds little)
    spent = 0.0
    calls = 0.0
    for n, e in end.items():
        b = start.get(n, {"runs": 0, "ns_per_run": 0.0})
        runs = e["runs"] - b["runs"]
        spent += e["runs"] * e["ns_per_run"] - b["runs"] * b["ns_per_run"]
        calls = max(calls, runs)
    assert rep.calls > 0
    return spent / calls if calls else 0.0


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    rounds: int = s.pick(1, 7)
    secs: float = s.pick(0.05, 1.0)
    res = ScenarioResult(
        name="idle",
        title="Untraced syscall overhead",
        description=(
            "ns per untraced getppid() (C loop pinned to one CPU, own pid namespace) with "
            "(a) nothing loaded, (b) the probe loaded with no filters, (c) the probe tracing "
            "openat in another pid namespace, (d) node-wide syscall metrics on (counts and "
            "errnos: one exit hook), (e) a bare raw_tp sys_enter + sys_exit pair (empty "
            "programs), (f) node-wide metrics with latency histograms (entry hook too). "
            "Variants alternate a, b, c, d, e, f per round; medians over rounds; "
            "ratio = rate / rate(a); added = ns - ns(a)."
        ),
        params={"rounds": rounds, "secs_per_measurement": secs, "syscall": "getppid"},
    )
    ns: dict[str, list[float]] = {v: [] for v in VARIANTS}
    checks = []
    other = NamespacedProcess(["sleep", "3600"], stdin=subprocess.DEVNULL)
    try:
        other.release()
        for r in range(rounds):
            ns["a"].append(_measure(ctx, secs).ns_per_iteration)
            probe = syshub.Probe()
            try:
                ns["b"].append(_measure(ctx, secs).ns_per_iteration)
                probe.add_filter(other.pid_ns, "openat")
                ns["c"].append(_measure(ctx, secs).ns_per_iteration)
                drain(probe, lambda b: None, idle_ms=50)
                stats = probe.stats()
                checks += key_checks(stats, {other.pid_ns}, f"round {r + 1} (c)")
            finally:
                probe.close()
            rep, check = _measure_metrics(ctx, secs, f"round {r + 1} (d)", latency=False)
            ns["d"].append(rep.ns_per_iteration)
            checks.append(check)
            with BareHooks():
                ns["e"].append(_measure(ctx, secs).ns_per_iteration)
            rep, check = _measure_metrics(ctx, secs, f"round {r + 1} (f)", latency=True)
            ns["f"].append(rep.ns_per_iteration)
            checks.append(check)
            ctx.say(
                f"idle: round {r + 1}/{rounds}: "
                + ", ".join(f"{v}={ns[v][-1]:.1f} ns" for v in VARIANTS)
            )
    finally:
        other.kill()
        other.wait()

    # intent: the BPF time per call of (d) and (e), from kernel.bpf_stats_enabled
    bpf_ns: dict[str, list[float]] = {"d": [], "e": [], "f": []}
    if bpfstats.available() is None:
        for _ in range(s.pick(1, 3)):
            bpf_ns["d"].append(_bpf_ns(ctx, secs, lambda: Metrics("node", latency=False), MX_PROGS))
            bpf_ns["e"].append(_bpf_ns(ctx, secs, BareHooks, BARE_PROGS))
            bpf_ns["f"].append(_bpf_ns(ctx, secs, lambda: Metrics("node"), MX_LATENCY_PROGS))
    med = {v: median(ns[v]) for v in VARIANTS}
    ratio = {v: med["a"] / med[v] for v in VARIANTS}
    paired = {v: median(a / x for a, x in zip(ns["a"], ns[v], strict=True)) for v in VARIANTS}
    added = {v: med[v] - med["a"] for v in VARIANTS}
    paired_added = {v: median(x - a for a, x in zip(ns["a"], ns[v], strict=True)) for v in VARIANTS}
    metrics_vs_bare = added["d"] / added["e"] if added["e"] > 0 else None
    res.checks = checks
    res.metrics = {
        "ns_per_call": ns,
        "median_ns": med,
        "ratio_to_a": ratio,
        "paired_ratio_to_a": paired,
        "added_ns": added,
        "paired_added_ns": paired_added,
        "metrics_added_vs_bare_pair": metrics_vs_bare,
        "bpf_ns_per_call": bpf_ns,
    }
    rows: list[list[Any]] = [
        [
            f"({v}) {label}",
            f"{med[v]:.1f}",
            f"{added[v]:+.1f}" if v != "a" else "-",
            f"{1e3 / med[v]:.2f} M",
            f"{ratio[v]:.3f}",
            f"{paired[v]:.3f}",
            " / ".join(f"{x:.1f}" for x in ns[v]),
        ]
        for v, label in VARIANTS.items()
    ]
    res.tables.append(
        Table(
            title="ns per untraced getppid (median of rounds)",
            columns=[
                "variant",
                "ns/call",
                "added ns",
                "calls/s",
                "ratio to (a)",
                "paired ratio",
                "per round",
            ],
            rows=rows,
        )
    )
    if bpf_ns["d"]:
        bd, be, bf = median(bpf_ns["d"]), median(bpf_ns["e"]), median(bpf_ns["f"])
        res.tables.append(
            Table(
                title="BPF run time per syscall, enter + exit programs (kernel.bpf_stats_enabled; "
                "each run also pays the statistics' own clock reads, which the empty pair shows)",
                columns=["hooks", "ns per call (median)", "runs"],
                rows=[
                    [
                        "(d) metrics, counting (one exit hook)",
                        f"{bd:.1f}",
                        " / ".join(f"{x:.1f}" for x in bpf_ns["d"]),
                    ],
                    ["(e) empty pair", f"{be:.1f}", " / ".join(f"{x:.1f}" for x in bpf_ns["e"])],
                    [
                        "(f) metrics with latency (enter + exit)",
                        f"{bf:.1f}",
                        " / ".join(f"{x:.1f}" for x in bpf_ns["f"]),
                    ],
                    ["(d) - (e)", f"{bd - be:+.1f}", "-"],
                    ["(f) - (d): the histogram's price", f"{bf - bd:+.1f}", "-"],
                ],
            )
        )
    res.targets.append(
        Target(
            what="untraced getppid rate while a job traces openat elsewhere (c)/(a)",
            target=f">= {TARGET_C:.2f}",
            value=round(ratio["c"], 3),
            unit="x untraced",
            met=ratio["c"] >= TARGET_C,
        )
    )
    res.targets.append(
        Target(
            what="node-wide metrics (d): untraced-to-metrics ratio vs a bare raw_tp pair (e)",
            target=f">= ratio (e) = {ratio['e']:.3f}",
            value=round(ratio["d"], 3),
            unit="x untraced",
            met=ratio["d"] >= ratio["e"],
            note=(
                f"added {added['d']:+.1f} ns/call (paired {paired_added['d']:+.1f}) vs bare pair "
                f"{added['e']:+.1f} ns (paired {paired_added['e']:+.1f})"
                + (f"; metrics/bare = {metrics_vs_bare:.2f}" if metrics_vs_bare else "")
                + f"; with latency (f): ratio {ratio['f']:.3f}, added {added['f']:+.1f} ns"
            ),
        )
    )
    res.charts.append(
        Chart(
            file="idle.png",
            title="ns per untraced getppid (median)",
            kind="bar",
            x=[f"({v})" for v in VARIANTS],
            series={"ns/call": [med[v] for v in VARIANTS]},
            ylabel="ns per call",
        )
    )
    return res
