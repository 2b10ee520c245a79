"""throughput: a getppid loop traced in its own pid namespace, delivered to
Python consumers of increasing cost, and a ring-size sweep."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
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
    fmt_int,
    fmt_rate,
    key_checks,
    key_totals,
    median,
)
from benches.workload import Loop, run_untraced

try:
    import numpy as np
except ImportError:  # the batch consumer falls back to memoryview
    np = None  # type: ignore[assignment]

MiB = 1 << 20
DEFAULT_RING = 16 * MiB
TARGET_BATCH = 2_000_000
TARGET_EVENT = 500_000
NO_WAKEUP = 1 << 62  # wakeup_bytes no ring can reach: the reader polls on its timer


class Consumer:
    """Counts events; subclasses decide how much of each event they touch."""

    name = ""
    label = ""

    def __init__(self) -> None:
        self.count = 0
        self.last_seq = 0

    def __call__(self, batch: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CountingConsumer(Consumer):
    name = "count"
    label = "native counting sink (len(batch): no per-event Python work)"

    def __call__(self, batch: Any) -> None:
        self.count += len(batch)


class BatchConsumer(Consumer):
    name = "batch"
    label = "Python batch (len + numpy seq column)"

    def __call__(self, batch: Any) -> None:
        n = len(batch)
        if n:
            col = batch.column("seq")
            seq = np.asarray(col) if np is not None else memoryview(col)
            self.last_seq = int(seq[n - 1])
            self.count += n


class EventConsumer(Consumer):
    name = "per-event"
    label = "Python per-event loop (ev.seq)"

    def __call__(self, batch: Any) -> None:
        last = self.last_seq
        n = 0
        for ev in batch:
            last = ev.seq
            n += 1
        self.last_seq = last
        self.count += n


class JsonConsumer(Consumer):
    name = "json"
    label = "JSON lines to /dev/null (json.dumps(ev.to_dict()))"

    def __init__(self) -> None:
        super().__init__()
        self._f = open("/dev/null", "w")  # noqa: SIM115 - closed in close()

    def __call__(self, batch: Any) -> None:
        w = self._f.write
        dumps = json.dumps
        n = 0
        for ev in batch:
            w(dumps(ev.to_dict()))
            w("\n")
            n += 1
        self.count += n

    def close(self) -> None:
        self._f.close()


CONSUMERS: list[Callable[[], Consumer]] = [
    CountingConsumer,
    BatchConsumer,
    EventConsumer,
    JsonConsumer,
]


def traced_run(
    ctx: Context,
    consumer: Consumer,
    ring_bytes: int,
    secs: float,
    label: str,
    wakeup_bytes: int | None = None,
) -> tuple[dict[str, Any], list[Check]]:
    """One traced loop run; returns (metrics, accounting checks)."""
    probe = syshub.Probe(ring_bytes, wakeup_bytes=wakeup_bytes)
    try:
        with Loop(ctx, "getppid", secs=secs) as loop:
            probe.add_filter(loop.pid_ns, "getppid")
            cpu0, pcpu0 = time.thread_time(), time.process_time()
            t0 = time.perf_counter()
            t_last = t0
            loop.start()
            while loop.running():
                b = probe.poll(timeout_ms=50)
                if b:
                    consumer(b)
                    t_last = time.perf_counter()
            report = loop.finish()

            def tail(b: Any) -> None:
                nonlocal t_last
                consumer(b)
                t_last = time.perf_counter()

            drained = drain(probe, tail)
            cpu = time.thread_time() - cpu0
            pcpu = time.process_time() - pcpu0
            stats = probe.stats()
            tot = key_totals(stats, {loop.pid_ns})
            checks = key_checks(stats, {loop.pid_ns}, label)
    finally:
        probe.close()
        consumer.close()
    wall = max(t_last - t0, 1e-9)
    delivered = tot["delivered"]
    m: dict[str, Any] = {
        "consumer": consumer.name,
        "ring_bytes": ring_bytes,
        "wakeup_bytes": wakeup_bytes,
        "loop": report.to_json(),
        "loop_calls_per_s": report.calls_per_s,
        "matched": tot["matched"],
        "delivered": delivered,
        "dropped": tot["dropped"],
        "sampled_out": tot["sampled_out"],
        "consumer_seen": consumer.count,
        "delivered_per_loop_s": delivered / report.secs,
        "consumer_wall_s": wall,
        "consumer_events_per_s": delivered / wall,
        "consumer_thread_cpu_s": cpu,
        "process_cpu_s": pcpu,
        "consumer_events_per_cpu_s": delivered / cpu if cpu > 0 else None,
        "last_seq": consumer.last_seq,
        "drained": drained,
        "reader": dataclasses.asdict(stats.reader),
        "kernel": dataclasses.asdict(stats.kernel),
    }
    if consumer.count != delivered:
        checks.append(
            Check(f"{label}: consumer saw every delivered event", delivered, consumer.count, 0, 0)
        )
    return m, checks


def _checks_ok(checks: list[Check], prefix: str) -> bool:
    return all(c.ok for c in checks if c.label.startswith(prefix))


def bpf_cost(ctx: Context, secs: float) -> dict[str, Any]:
    """BPF program run time per call during a traced run (diagnostic)."""
    why = bpfstats.available()
    if why:
        return {"note": f"skipped: {why}"}
    names = {"syshub_sys_enter", "syshub_sys_exit"}
    before = bpfstats.program_ids(names)
    probe = syshub.Probe(DEFAULT_RING)
    try:
        ours = bpfstats.program_ids(names) - before
        with Loop(ctx, "getppid", secs=secs) as loop, bpfstats.stats_enabled():
            probe.add_filter(loop.pid_ns, "getppid")
            loop.start()
            while loop.running():
                probe.poll(timeout_ms=50)
            report = loop.finish()
            costs = bpfstats.run_costs(ours)
        drain(probe, lambda b: None)
    finally:
        probe.close()
    return {
        "programs": costs,
        "ns_per_call_in_bpf": sum(c["ns_per_run"] for c in costs.values()),
        "loop_calls_per_s_with_stats": report.calls_per_s,
    }


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    secs: float = s.pick(0.2, 2.0)
    reps: int = s.pick(1, 3)
    sweep_sizes: list[int] = s.pick([1 * MiB, 4 * MiB], [1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB])
    sweep_reps: int = s.pick(1, 2)
    res = ScenarioResult(
        name="throughput",
        title="Traced getppid loop delivered to Python",
        description=(
            "A C getppid loop (pinned to CPU 0, own pid namespace) traced by syshub "
            "(one filter: its pid namespace + getppid); the consumer runs on the other CPU. "
            "Loop calls/s is measured inside the loop; delivered/s = events delivered / loop "
            "seconds; consumer events/s = delivered / consumer wall time (release to last "
            "event). Consumers alternate per repetition; medians over repetitions."
        ),
        params={
            "secs": secs,
            "reps": reps,
            "ring_bytes": DEFAULT_RING,
            "sweep_ring_bytes": sweep_sizes,
            "sweep_reps": sweep_reps,
        },
    )
    untraced = run_untraced(ctx, "getppid", secs)
    ctx.say(f"throughput: untraced loop {fmt_rate(untraced.calls_per_s)} calls/s")
    runs: dict[str, list[dict[str, Any]]] = {c().name: [] for c in CONSUMERS}
    labels = {c.name: c.label for c in CONSUMERS}  # type: ignore[attr-defined]
    for rep in range(reps):
        for make in CONSUMERS:
            c = make()
            m, checks = traced_run(ctx, c, DEFAULT_RING, secs, f"{c.name} rep {rep + 1}")
            runs[c.name].append(m)
            res.checks += checks
            ctx.say(
                f"throughput: {c.name} rep {rep + 1}/{reps}: loop "
                f"{fmt_rate(m['loop_calls_per_s'])} calls/s, consumer "
                f"{fmt_rate(m['consumer_events_per_s'])} ev/s, dropped {m['dropped']}"
            )

    sweep: dict[int, list[dict[str, Any]]] = {size: [] for size in sweep_sizes}
    for rep in range(sweep_reps):
        for size in sweep_sizes:
            m, checks = traced_run(
                ctx, BatchConsumer(), size, secs, f"ring {size // MiB} MiB rep {rep + 1}"
            )
            sweep[size].append(m)
            res.checks += checks
            ctx.say(
                f"throughput: ring {size // MiB} MiB rep {rep + 1}/{sweep_reps}: loop "
                f"{fmt_rate(m['loop_calls_per_s'])} calls/s, dropped {m['dropped']}"
            )

    # Diagnostic: the same slow consumer with the forced wake-ups disabled (the
    # reader then runs on its poll timer only), to show what they cost the
    # traced process once the consumer lags and > wakeup_bytes is pending.
    timer_only, checks = traced_run(
        ctx, JsonConsumer(), DEFAULT_RING, secs, "json timer-only", wakeup_bytes=NO_WAKEUP
    )
    res.checks += checks
    ctx.say(
        f"throughput: json, timer-only wake-ups: loop "
        f"{fmt_rate(timer_only['loop_calls_per_s'])} calls/s, dropped {timer_only['dropped']}"
    )

    cost = bpf_cost(ctx, secs)
    if "ns_per_call_in_bpf" in cost:
        ctx.say(f"throughput: BPF programs {cost['ns_per_call_in_bpf']:.0f} ns per traced call")

    def med(rs: list[dict[str, Any]], k: str) -> float:
        return median(float(r[k]) for r in rs if r[k] is not None)

    rows: list[list[Any]] = [
        [
            "untraced loop (reference)",
            fmt_rate(untraced.calls_per_s),
            "1.000",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]
    ]
    summary: dict[str, Any] = {}
    for name, rs in runs.items():
        loop_rate = med(rs, "loop_calls_per_s")
        summary[name] = {
            "loop_calls_per_s": loop_rate,
            "delivered_per_loop_s": med(rs, "delivered_per_loop_s"),
            "consumer_events_per_s": med(rs, "consumer_events_per_s"),
            "consumer_events_per_cpu_s": med(rs, "consumer_events_per_cpu_s"),
            "dropped_total": sum(int(r["dropped"]) for r in rs),
            "matched_total": sum(int(r["matched"]) for r in rs),
        }
        rows.append(
            [
                labels[name],
                fmt_rate(loop_rate),
                f"{loop_rate / untraced.calls_per_s:.3f}",
                fmt_rate(summary[name]["delivered_per_loop_s"]),
                fmt_rate(summary[name]["consumer_events_per_s"]),
                fmt_rate(summary[name]["consumer_events_per_cpu_s"]),
                f"{fmt_int(summary[name]['dropped_total'])} / "
                f"{fmt_int(summary[name]['matched_total'])}",
                "yes"
                if all(c.ok for c in res.checks if c.label.startswith(f"{name} rep"))
                else "NO",
            ]
        )
    rows.append(
        [
            "JSON lines, forced wake-ups off (diagnostic, 1 run)",
            fmt_rate(timer_only["loop_calls_per_s"]),
            f"{timer_only['loop_calls_per_s'] / untraced.calls_per_s:.3f}",
            fmt_rate(timer_only["delivered_per_loop_s"]),
            fmt_rate(timer_only["consumer_events_per_s"]),
            fmt_rate(timer_only["consumer_events_per_cpu_s"]),
            f"{fmt_int(timer_only['dropped'])} / {fmt_int(timer_only['matched'])}",
            "yes" if _checks_ok(res.checks, "json timer-only") else "NO",
        ]
    )
    res.tables.append(
        Table(
            title=f"Consumers, ring {DEFAULT_RING // MiB} MiB, {secs:g} s runs (median of {reps})",
            columns=[
                "consumer",
                "loop calls/s",
                "vs untraced",
                "delivered/s",
                "consumer ev/s (wall)",
                "consumer ev per CPU-s",
                "dropped / matched",
                "accounting",
            ],
            rows=rows,
        )
    )
    sweep_rows: list[list[Any]] = []
    sweep_summary: dict[str, Any] = {}
    for size, rs in sweep.items():
        d: dict[str, Any] = {
            "loop_calls_per_s": med(rs, "loop_calls_per_s"),
            "delivered_per_loop_s": med(rs, "delivered_per_loop_s"),
            "dropped_total": sum(int(r["dropped"]) for r in rs),
            "matched_total": sum(int(r["matched"]) for r in rs),
            "wakeups_per_run": median(float(r["reader"]["wakeups"]) for r in rs),
        }
        sweep_summary[str(size)] = d
        sweep_rows.append(
            [
                f"{size // MiB} MiB",
                fmt_rate(d["loop_calls_per_s"]),
                fmt_rate(d["delivered_per_loop_s"]),
                f"{fmt_int(d['dropped_total'])} / {fmt_int(d['matched_total'])}",
                f"{d['wakeups_per_run']:.0f}",
            ]
        )
    res.tables.append(
        Table(
            title=f"Ring size sweep, batch consumer (median of {sweep_reps})",
            columns=["ring", "loop calls/s", "delivered/s", "dropped / matched", "reader wakeups"],
            rows=sweep_rows,
        )
    )
    if "programs" in cost:
        res.tables.append(
            Table(
                title="Where a traced call goes: BPF program run time (bpf_stats_enabled)",
                columns=["program", "runs", "ns per run"],
                rows=[
                    [n, fmt_int(int(c["runs"])), f"{c['ns_per_run']:.0f}"]
                    for n, c in sorted(cost["programs"].items())
                ]
                + [
                    ["untraced getppid (loop)", "-", f"{untraced.ns_per_iteration:.0f}"],
                ],
            )
        )
    res.metrics = {
        "untraced": untraced.to_json(),
        "consumers": summary,
        "runs": runs,
        "json_timer_only_wakeups": timer_only,
        "ring_sweep": sweep_summary,
        "ring_sweep_runs": {str(k): v for k, v in sweep.items()},
        "bpf_cost": cost,
    }
    # Every batch-consumer run at the default ring size counts for the target:
    # the consumer repetitions and the sweep's runs at that size.
    default_runs = runs["batch"] + sweep.get(DEFAULT_RING, [])
    b_all = [float(r["delivered_per_loop_s"]) for r in default_runs]
    b_rate = median(b_all)
    b_dropped = sum(int(r["dropped"]) for r in default_runs)
    b_matched = sum(int(r["matched"]) for r in default_runs)
    res.metrics["batch_default_ring"] = {
        "runs": len(default_runs),
        "delivered_per_loop_s_median": b_rate,
        "delivered_per_loop_s_all": b_all,
        "dropped_total": b_dropped,
        "matched_total": b_matched,
    }
    res.targets.append(
        Target(
            what="traced calls/s delivered to the Python batch consumer, 0 drops (16 MiB ring)",
            target=f">= {TARGET_BATCH:,}/s with 0 drops",
            value=round(b_rate),
            unit="events/s",
            met=b_rate >= TARGET_BATCH and b_dropped == 0,
            note=(
                f"median of {len(b_all)} runs (min {fmt_rate(min(b_all))}, "
                f"max {fmt_rate(max(b_all))}); dropped {b_dropped:,} of {b_matched:,}"
            ),
        )
    )
    e = summary["per-event"]
    res.targets.append(
        Target(
            what="events/s through a Python per-event loop",
            target=f">= {TARGET_EVENT:,}/s",
            value=round(e["consumer_events_per_s"]),
            unit="events/s",
            met=e["consumer_events_per_s"] >= TARGET_EVENT,
            note=(
                f"dropped {e['dropped_total']} of {e['matched_total']}; "
                f"{fmt_rate(e['consumer_events_per_cpu_s'])} events per consumer CPU-second"
            ),
        )
    )
    names = list(summary)
    res.charts.append(
        Chart(
            file="throughput.png",
            title="Traced getppid loop: loop rate and consumer rate",
            kind="bar",
            x=names,
            series={
                "loop calls/s": [summary[n]["loop_calls_per_s"] for n in names],
                "consumer events/s": [summary[n]["consumer_events_per_s"] for n in names],
            },
            ylabel="per second",
        )
    )
    res.charts.append(
        Chart(
            file="ring_sweep.png",
            title="Ring size sweep (batch consumer)",
            kind="line",
            x=[size // MiB for size in sweep],
            series={
                "delivered/s": [sweep_summary[str(k)]["delivered_per_loop_s"] for k in sweep],
            },
            xlabel="ring MiB",
            ylabel="events/s",
            logx=True,
        )
    )
    return res
