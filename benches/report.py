"""Writes results.json, results.md (Markdown tables) and PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benches.common import Chart, ScenarioResult, Table, Target


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    lines = [f"**{t.title}**", ""]
    lines.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in t.columns) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _met(t: Target) -> str:
    if t.met is None:
        return "not measured"
    return "met" if t.met else "**NOT met**"


def _value(t: Target) -> str:
    if t.value is None:
        return t.note or "-"
    v = f"{t.value:,.3f}" if abs(t.value) < 100 else f"{t.value:,.0f}"
    return f"{v} {t.unit}".strip()


def targets_table(results: list[ScenarioResult]) -> Table:
    rows: list[list[Any]] = []
    for r in results:
        for t in r.targets:
            note = t.note if t.value is not None else ""
            rows.append([r.name, t.what, t.target, _value(t), _met(t), note])
    return Table(
        title="Targets (ARCHITECTURE.md, Performance targets)",
        columns=["scenario", "what", "target", "measured", "status", "note"],
        rows=rows,
    )


def draw_charts(results: list[ScenarioResult], out_dir: Path) -> tuple[list[str], str]:
    """Draws every chart; returns (files written, note when skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "charts skipped: matplotlib is not installed (pip install matplotlib)"
    written: list[str] = []
    for r in results:
        for c in r.charts:
            fig, ax = plt.subplots(figsize=(8, 4.5))
            try:
                _draw(ax, c)
                fig.tight_layout()
                fig.savefig(out_dir / c.file, dpi=100)
                written.append(c.file)
            finally:
                plt.close(fig)
    return written, ""


def _draw(ax: Any, c: Chart) -> None:
    ax.set_title(c.title)
    ax.set_xlabel(c.xlabel)
    ax.set_ylabel(c.ylabel)
    if c.kind == "bar":
        n = max(1, len(c.series))
        width = 0.8 / n
        for i, (label, ys) in enumerate(c.series.items()):
            xs = [j + (i - (n - 1) / 2) * width for j in range(len(c.x))]
            ax.bar(xs, [y if y is not None else 0 for y in ys], width=width, label=label)
        ax.set_xticks(range(len(c.x)))
        ax.set_xticklabels([str(x) for x in c.x], rotation=15, ha="right", fontsize=8)
    else:
        for label, ys in c.series.items():
            pts = [(x, y) for x, y in zip(c.x, ys, strict=True) if y is not None and y == y]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if c.logx:
            ax.set_xscale("log", base=2)
            ax.set_xticks(c.x)
            ax.set_xticklabels([str(x) for x in c.x])
    if c.logy:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if len(c.series) > 1:
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)


def write_markdown(
    meta: dict[str, Any], results: list[ScenarioResult], charts: list[str], chart_note: str
) -> str:
    out = ["# syshub benchmark results", ""]
    out.append(
        f"- date: {meta['date']}  \n- machine: {meta['cpus']} CPUs ({meta['cpu_model']}), "
        f"kernel {meta['kernel']}  \n- mode: {'quick' if meta['quick'] else 'full'}; command: "
        f"`{meta['command']}`  \n- load average before / after: {meta['load_before']} / "
        f"{meta['load_after']}  \n- pinning: workload on CPU {meta['loop_cpu']}, harness and "
        f"consumers on {meta['consumer_cpus']}  \n- other BPF programs loaded at start: "
        f"{meta['bpf_programs_at_start']}"
    )
    if meta.get("noise_warning"):
        out += ["", f"> **Warning:** {meta['noise_warning']}"]
    out += ["", md_table(targets_table(results)), ""]
    if chart_note:
        out += [f"_{chart_note}_", ""]
    for r in results:
        out += [f"## {r.name}: {r.title}", "", r.description, ""]
        if r.status != "ok" or r.note:
            out += [f"Status: **{r.status}** {r.note}".rstrip(), ""]
        for t in r.tables:
            out += [md_table(t), ""]
        strict = [c for c in r.checks if c.strict]
        bad = [c for c in strict if not c.ok]
        if strict:
            verdict = "holds" if not bad else "**FAILS**"
            out.append(
                f"Accounting (matched = delivered + dropped + sampled_out): {verdict} "
                f"for {len(strict) - len(bad)}/{len(strict)} keys/runs."
            )
            for c in bad:
                out.append(
                    f"- {c.label}: matched {c.matched} != delivered {c.delivered} + "
                    f"dropped {c.dropped} + sampled_out {c.sampled_out}"
                )
            out.append("")
        for ch in r.charts:
            if ch.file in charts:
                out += [f"![{ch.title}]({ch.file})", ""]
        for n in r.notes:
            out += [f"- {n}"]
        if r.notes:
            out.append("")
        out += [f"_elapsed {r.elapsed_s:.1f} s_", ""]
    return "\n".join(out)


def write_all(out_dir: Path, meta: dict[str, Any], results: list[ScenarioResult]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    charts, chart_note = draw_charts(results, out_dir)
    meta = {**meta, "charts": charts, "chart_note": chart_note}
    doc = {
        "meta": meta,
        "scenarios": {r.name: r.to_json() for r in results},
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(write_markdown(meta, results, charts, chart_note) + "\n")
