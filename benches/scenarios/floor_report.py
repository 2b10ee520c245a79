"""The floor scenario's summary, tables and targets (issue 15), from the
runs that benches/scenarios/floor.py measured."""

from __future__ import annotations

from typing import Any

from benches.common import ScenarioResult, Table, Target, fmt_int, fmt_rate, median

TARGET_RATIO = 0.80
READER_THREAD = "syshub-reader"
VARIANTS = {
    "untraced": "(a) untraced",
    "floor": "(b) floor: count-only, enter + exit pair",
    "floor_exit": "(b') floor: count-only, exit hook only",
    "syshub": "(c) syshub, batch consumer, default filter",
    "syshub_durations": "(c') syshub, durations=True (entry hook too)",
    "ceiling": "(d) C + libbpf ceiling",
}
FLOORS = {"floor": "enter + exit pair", "floor_exit": "exit hook only"}
SYSHUBS = ("syshub", "syshub_durations")


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _ns(rate: float) -> float:
    return 1e9 / rate if rate > 0 else float("nan")


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _paired(xs: list[dict[str, Any]], ys: list[dict[str, Any]], key: str, inverse: bool) -> float:
    """Median over repetitions of x/y (or y/x for ``inverse``: CPU per call)."""
    vals = []
    for x, y in zip(xs, ys, strict=True):
        a, b = (y[key], x[key]) if inverse else (x[key], y[key])
        if b > 0:
            vals.append(a / b)
    return median(vals)


def summarize(by_variant: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians, added ns, and each variant's ratio to each floor: rate / floor
    rate, and floor CPU per call / CPU per call."""
    rate = {v: median(r["calls_per_s"] for r in rs) for v, rs in by_variant.items()}
    cpu = {
        v: median(r["cpu_ns_per_call"] for r in rs)
        for v, rs in by_variant.items()
        if v != "ceiling"
    }
    base_ns = _ns(rate["untraced"])
    d: dict[str, Any] = {
        "calls_per_s": rate,
        "ns_per_call": {v: _ns(r) for v, r in rate.items()},
        "added_ns": {v: _ns(r) - base_ns for v, r in rate.items()},
        "cpu_ns_per_call": cpu,
        "cpu_added_ns": {v: x - cpu["untraced"] for v, x in cpu.items()},
    }
    for f in FLOORS:
        if f not in rate:
            continue
        d[f"ratio_to_{f}"] = {v: _div(r, rate[f]) for v, r in rate.items()}
        d[f"cpu_ratio_to_{f}"] = {v: _div(cpu[f], x) for v, x in cpu.items()}
        for v in SYSHUBS:
            if v in by_variant:
                d[f"paired_ratio_{v}_{f}"] = _paired(
                    by_variant[v], by_variant[f], "calls_per_s", False
                )
                d[f"paired_cpu_ratio_{v}_{f}"] = _paired(
                    by_variant[v], by_variant[f], "cpu_ns_per_call", True
                )
    # the names the target reads: syshub (default filter) / the pair floor
    d["syshub_over_floor"] = d["ratio_to_floor"]["syshub"]
    d["syshub_over_floor_paired"] = d["paired_ratio_syshub_floor"]
    d["syshub_over_floor_cpu"] = d["cpu_ratio_to_floor"]["syshub"]
    sy = by_variant["syshub"]
    d.update(
        {
            "dropped_total": sum(int(r["dropped"]) for r in sy),
            "matched_total": sum(int(r["matched"]) for r in sy),
            "delivered_total": sum(int(r["delivered"]) for r in sy),
            "reader_thread_found": all(r["reader_threads"] == 1 for r in sy),
            "path_faults_floor": sum(
                int(r["path_faults"]) for f in FLOORS for r in by_variant.get(f, [])
            ),
        }
    )
    for k in (
        "reader_cpu_ms_per_m_events",
        "consumer_cpu_ms_per_m_events",
        "process_cpu_ms_per_m_events",
        "process_minus_consumer_cpu_ms_per_m_events",
    ):
        d[k] = median(r[k] for r in sy)
    return d


def _rate_rows(
    sc: str, by_variant: dict[str, list[dict[str, Any]]], d: dict[str, Any]
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for v, rs in by_variant.items():
        has_cpu = v in d["cpu_ns_per_call"]
        row = [
            sc,
            VARIANTS[v],
            fmt_rate(d["calls_per_s"][v]),
            f"{d['ns_per_call'][v]:.1f}",
            "-" if v == "untraced" else f"{d['added_ns'][v]:+.1f}",
        ]
        for f in FLOORS:
            ratio = d.get(f"ratio_to_{f}", {}).get(v)
            paired = d.get(f"paired_ratio_{v}_{f}")
            row.append(_fmt(ratio) + (f" ({_fmt(paired)})" if paired is not None else ""))
        row += [
            f"{d['cpu_ns_per_call'][v]:.1f}" if has_cpu else "-",
            f"{d['cpu_added_ns'][v]:+.1f}" if has_cpu and v != "untraced" else "-",
        ]
        for f in FLOORS:
            ratio = d.get(f"cpu_ratio_to_{f}", {}).get(v) if has_cpu else None
            paired = d.get(f"paired_cpu_ratio_{v}_{f}")
            row.append(_fmt(ratio) + (f" ({_fmt(paired)})" if paired is not None else ""))
        row.append(" / ".join(fmt_rate(r["calls_per_s"]) for r in rs))
        rows.append(row)
    return rows


def _targets(res: ScenarioResult, sc: str, d: dict[str, Any]) -> None:
    for f, hooks in FLOORS.items():
        if f"ratio_to_{f}" not in d:
            continue
        ratio = d[f"ratio_to_{f}"]["syshub"]
        cpu_ratio = d[f"cpu_ratio_to_{f}"]["syshub"]
        extra = ""
        if "syshub_durations" in d["calls_per_s"]:
            extra = f"; durations=True: {_fmt(d[f'ratio_to_{f}']['syshub_durations'])}"
        res.targets.append(
            Target(
                what=f"syshub / floor ({hooks}), {sc} loop, every call delivered",
                target=f">= {TARGET_RATIO:.2f} with 0 drops",
                value=None if ratio is None else round(ratio, 3),
                unit="x floor calls/s",
                met=None if ratio is None else ratio >= TARGET_RATIO and d["dropped_total"] == 0,
                note=(
                    f"syshub {d['ns_per_call']['syshub']:.0f} ns/call, floor "
                    f"{d['ns_per_call'][f]:.0f}, untraced {d['ns_per_call']['untraced']:.0f}; "
                    f"paired {_fmt(d.get(f'paired_ratio_syshub_{f}'))}; by the loop's CPU "
                    f"per call {_fmt(cpu_ratio)} (paired "
                    f"{_fmt(d.get(f'paired_cpu_ratio_syshub_{f}'))}){extra}; dropped "
                    f"{d['dropped_total']:,} of {d['matched_total']:,}"
                ),
            )
        )


def report(
    res: ScenarioResult,
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    costs: dict[str, dict[str, Any]],
) -> None:
    summary: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for sc, by_variant in runs.items():
        d = summary[sc] = summarize(by_variant)
        if not d["reader_thread_found"]:
            res.notes.append(
                f"{sc}: the reader thread ({READER_THREAD!r}) was not found in every run (or more "
                "than one was): its column is not the reader alone; the process - consumer "
                "column is the cross-check."
            )
        rows += _rate_rows(sc, by_variant, d)
        _targets(res, sc, d)
    res.tables.append(
        Table(
            title="Calls/s and ns per call (median of repetitions; ratios: median ratio of "
            "medians, per-repetition median in brackets)",
            columns=[
                "loop",
                "variant",
                "calls/s",
                "ns/call",
                "added ns vs (a)",
                "rate / floor pair",
                "rate / floor exit",
                "CPU ns/call",
                "CPU added ns",
                "floor pair CPU / CPU",
                "floor exit CPU / CPU",
                "calls/s per repetition",
            ],
            rows=rows,
        )
    )
    res.tables.append(
        Table(
            title="syshub runs (default filter): accounting and CPU per million events "
            "delivered (median)",
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
                [sc, variant, "all, ns per loop call", fmt_int(c["calls"]), f"{per_call:.1f}"]
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
