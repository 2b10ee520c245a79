"""decode: raw records -> Python Event objects, per core.

Records ~100k real records from traced runs (getppid; openat+close of a tmpfs
path; socket+connect+close to a refused loopback port; fork+execve /bin/true), then decodes them
single-threaded: one by one with ``syshub_probe.decode_record``, and by iterating
the recorded batches. The Rust-side decode rate comes from a cargo test when
one exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import syshub
from benches.common import (
    Chart,
    Context,
    ScenarioResult,
    Table,
    Target,
    drain,
    fmt_rate,
    key_checks,
    median,
)
from benches.workload import Loop
from syshub import probe as syshub_probe

ROOT = Path(__file__).resolve().parents[2]
RUST_TEST = "decode_throughput"
TARGET_RUST = 5_000_000

# (mode, syscalls to trace, iterations at full size; records = iterations x calls)
MIX: list[tuple[str, list[str], int]] = [
    ("getppid", ["getppid"], 40_000),
    ("openclose", ["openat", "close"], 20_000),
    ("connect", ["socket", "connect", "close"], 7_000),
    ("forkexec", ["execve"], 1_000),
]


def record(ctx: Context, scale: float) -> tuple[list[bytes], list[Any], list[Any], dict[str, int]]:
    """Traced runs of the mix; returns (raw records, batches, checks, per-syscall counts)."""
    raws: list[bytes] = []
    batches: list[Any] = []
    checks: list[Any] = []
    probe = syshub.Probe(16 << 20)

    def keep(b: Any) -> None:
        batches.append(b)
        for i in range(len(b)):
            raws.append(b.raw(i))

    try:
        for mode, syscalls, n in MIX:
            with Loop(ctx, mode, count=max(1, int(n * scale))) as loop:
                for sc in syscalls:
                    probe.add_filter(loop.pid_ns, sc)
                loop.start()
                while loop.running():
                    b = probe.poll(timeout_ms=20)
                    if b:
                        keep(b)
                loop.finish()
                drain(probe, keep)
                checks += key_checks(probe.stats(), {loop.pid_ns}, f"recording {mode}")
                for sc in syscalls:
                    probe.remove_filter(loop.pid_ns, sc)
    finally:
        probe.close()
    counts = Counter(syshub_probe.decode_record(r).syscall for r in raws)
    return raws, batches, checks, dict(counts)


def timed(fn: Callable[[], int], reps: int) -> dict[str, float]:
    """Median wall and thread-CPU rate of fn() (which returns events handled)."""
    walls: list[float] = []
    cpus: list[float] = []
    n = 0
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.thread_time()
        n = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
    w, c = median(walls), median(cpus)
    return {
        "events": n,
        "wall_s": w,
        "cpu_s": c,
        "events_per_s": n / w if w > 0 else 0.0,
        "events_per_cpu_s": n / c if c > 0 else 0.0,
    }


def rust_decode(ctx: Context) -> dict[str, Any]:
    """Runs the Rust decode benchmark test if it exists (full mode only)."""
    src = ROOT / "bpf-rs"
    pattern = re.compile(rf"fn\s+{RUST_TEST}\b")
    exists = any(
        pattern.search(p.read_text(errors="replace"))
        for p in src.rglob("*.rs")
        if "target" not in p.parts
    )
    if not exists:
        return {"status": "placeholder", "note": "Rust decode: see cargo (no such test yet)"}
    if ctx.settings.quick:
        return {"status": "skipped", "note": "Rust decode: see cargo (not run in --quick)"}
    if shutil.which("cargo") is None:
        return {"status": "skipped", "note": "Rust decode: see cargo (cargo not installed)"}
    argv = [
        "cargo",
        "test",
        "--release",
        "-p",
        "syshub-bpf",
        RUST_TEST,
        "--",
        "--nocapture",
        "--ignored",
    ]
    ctx.say("decode: running " + " ".join(argv))
    try:
        r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"status": "error", "note": "cargo test timed out", "command": " ".join(argv)}
    text = r.stdout + r.stderr
    # lines like "decode openat+path: 3.67 M records/s (...)"
    scale = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
    kinds = {
        kind: float(num) * scale[unit]
        for kind, num, unit in re.findall(
            r"decode\s+(\S+):\s*([\d.]+)\s*([kKMG]?)\s*(?:records|events)/s", text
        )
    }
    ok = r.returncode == 0 and bool(kinds)
    return {
        "status": "ok" if ok else "error",
        "command": " ".join(argv),
        "per_kind": kinds,
        # the target holds only if every record kind decodes fast enough
        "events_per_s": min(kinds.values()) if kinds else None,
        "slowest_kind": min(kinds, key=lambda k: kinds[k]) if kinds else None,
        "note": "" if ok else "cargo test failed or printed no rates",
        "output_tail": text[-2000:],
    }


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    scale: float = s.pick(0.05, 1.0)
    reps: int = s.pick(1, 3)
    res = ScenarioResult(
        name="decode",
        title="Record decode rate (per core)",
        description=(
            "Real records from traced runs of the workload (getppid; openat+close of a tmpfs "
            "path; socket+connect+close to a refused port; execve of /bin/true with its argv) "
            "decoded single-threaded into "
            "Python Event objects: via syshub_probe.decode_record(raw) (header only, then with "
            "ev.args, then ev.to_dict()), and by iterating the recorded batches. Rates per "
            "core: events / thread CPU seconds, and events / wall seconds."
        ),
        params={"scale": scale, "reps": reps, "mix": [(m, sc, n) for m, sc, n in MIX]},
    )
    raws, batches, checks, counts = record(ctx, scale)
    res.checks = checks
    nbytes = sum(len(r) for r in raws)
    ctx.say(f"decode: recorded {len(raws):,} records ({nbytes / 1e6:.1f} MB)")
    decode_record = syshub_probe.decode_record

    def by_record() -> int:
        for r in raws:
            decode_record(r)
        return len(raws)

    def by_record_args() -> int:
        for r in raws:
            decode_record(r).args  # noqa: B018 - the decode is the point
        return len(raws)

    def by_record_dict() -> int:
        for r in raws:
            decode_record(r).to_dict()
        return len(raws)

    def by_batch() -> int:
        n = 0
        for b in batches:
            for ev in b:
                ev.seq  # noqa: B018
                n += 1
        return n

    def by_batch_args() -> int:
        n = 0
        for b in batches:
            for ev in b:
                ev.args  # noqa: B018
                n += 1
        return n

    methods: list[tuple[str, Callable[[], int]]] = [
        ("decode_record(raw)", by_record),
        ("decode_record(raw).args", by_record_args),
        ("decode_record(raw).to_dict()", by_record_dict),
        ("iterate batches, ev.seq", by_batch),
        ("iterate batches, ev.args", by_batch_args),
    ]
    results: dict[str, dict[str, float]] = {}
    for name, fn in methods:
        results[name] = timed(fn, reps)
        ctx.say(f"decode: {name}: {fmt_rate(results[name]['events_per_cpu_s'])} events/CPU-s")
    rust = rust_decode(ctx)
    rows: list[list[Any]] = [
        [
            name,
            f"{int(r['events']):,}",
            fmt_rate(r["events_per_cpu_s"]),
            fmt_rate(r["events_per_s"]),
            f"{1e9 / r['events_per_cpu_s']:.0f}" if r["events_per_cpu_s"] else "-",
        ]
        for name, r in results.items()
    ]
    rust_rate = rust.get("events_per_s")
    if rust.get("per_kind"):
        for kind, rate in rust["per_kind"].items():
            rows.append(
                [f"Rust decode, {kind} records (cargo test)", "-", fmt_rate(rate), "-", "-"]
            )
    else:
        rows.append(["Rust decode (cargo test)", "-", "-", "-", rust.get("note", "")])
    res.tables.append(
        Table(
            title=f"Decode of {len(raws):,} recorded records (median of {reps})",
            columns=["method", "events", "events per CPU-s", "events/s (wall)", "ns per event"],
            rows=rows,
        )
    )
    res.tables.append(
        Table(
            title="Recorded mix",
            columns=["syscall", "records"],
            rows=[[k, f"{v:,}"] for k, v in sorted(counts.items())],
        )
    )
    res.metrics = {
        "records": len(raws),
        "bytes": nbytes,
        "batches": len(batches),
        "mix": counts,
        "python": results,
        "rust": rust,
    }
    per_kind = rust.get("per_kind") or {}
    res.targets.append(
        Target(
            what="raw record decode in Rust, per core (slowest record kind)",
            target=f">= {TARGET_RUST:,}/s",
            value=rust_rate,
            unit="events/s",
            met=(rust_rate >= TARGET_RUST) if rust_rate else None,
            note=(
                ", ".join(f"{k}: {fmt_rate(v)}/s" for k, v in per_kind.items())
                if per_kind
                else rust.get("note", "")
            ),
        )
    )
    res.charts.append(
        Chart(
            file="decode.png",
            title="Decode into Python Event objects, per core",
            kind="bar",
            x=[n for n, _ in methods],
            series={"events per CPU-s": [results[n]["events_per_cpu_s"] for n, _ in methods]},
            ylabel="events per CPU-second",
        )
    )
    return res
