"""idle: what syshub costs a syscall it does NOT trace.

ns per getppid of an untraced loop while (a) nothing is loaded, (b) a probe
is loaded with no filters, (c) the probe traces openat in another pid
namespace (an idle ``sleep``), (d) node-wide metrics mode (not implemented).
Variants alternate a, b, c, a, b, c, ... in one run."""

from __future__ import annotations

import subprocess
from typing import Any

import syshub
from benches.common import (
    Chart,
    Context,
    ScenarioResult,
    Table,
    Target,
    drain,
    key_checks,
    median,
)
from benches.workload import Loop, LoopReport
from syshub.nsproc import NamespacedProcess

VARIANTS = {
    "a": "nothing loaded",
    "b": "probe loaded, no filters",
    "c": "probe tracing openat in another pid namespace",
}
TARGET_C = 0.80


def _measure(ctx: Context, secs: float) -> LoopReport:
    with Loop(ctx, "getppid", secs=secs) as loop:
        loop.start()
        return loop.finish()


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
            "openat in another pid namespace, (d) node-wide metrics mode. Variants alternate "
            "a, b, c per round; medians over rounds; ratio = rate / rate(a)."
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
            ctx.say(
                f"idle: round {r + 1}/{rounds}: "
                + ", ".join(f"{v}={ns[v][-1]:.1f} ns" for v in VARIANTS)
            )
    finally:
        other.kill()
        other.wait()

    med = {v: median(ns[v]) for v in VARIANTS}
    ratio = {v: med["a"] / med[v] for v in VARIANTS}
    paired = {v: median(a / x for a, x in zip(ns["a"], ns[v], strict=True)) for v in VARIANTS}
    res.checks = checks
    res.metrics = {
        "ns_per_call": ns,
        "median_ns": med,
        "ratio_to_a": ratio,
        "paired_ratio_to_a": paired,
        "d": "n/a (not implemented)",
    }
    rows: list[list[Any]] = [
        [
            f"({v}) {label}",
            f"{med[v]:.1f}",
            f"{1e3 / med[v]:.2f} M",
            f"{ratio[v]:.3f}",
            f"{paired[v]:.3f}",
            " / ".join(f"{x:.1f}" for x in ns[v]),
        ]
        for v, label in VARIANTS.items()
    ]
    rows.append(["(d) node-wide metrics mode", "n/a (not implemented)", "-", "-", "-", "-"])
    res.tables.append(
        Table(
            title="ns per untraced getppid (median of rounds)",
            columns=[
                "variant",
                "ns/call",
                "calls/s",
                "ratio to (a)",
                "paired ratio",
                "per round",
            ],
            rows=rows,
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
            what="node-wide metrics mode (d)/(a)",
            target="(no target)",
            value=None,
            unit="",
            met=None,
            note="n/a (not implemented)",
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
