"""``python -m benches``: run the named scenarios, write results.json,
results.md and charts into --out (default benches/results/<timestamp>/)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benches import build, report
from benches.common import (
    ERROR,
    Context,
    ScenarioResult,
    Settings,
    loadavg,
    pin_self,
    progress,
)
from benches.scenarios import SCENARIOS

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches",
        description="syshub benchmarks (needs root and a BPF-capable kernel).",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke), no timing value")
    p.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    p.add_argument("--out", type=Path, help="output directory (default benches/results/<ts>/)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=build.default_cache_dir(),
        help="where compiled workloads are kept (default %(default)s)",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the workload to CPU 0 and the consumers to the other CPUs",
    )
    p.add_argument("--list", action="store_true", help="list scenarios and exit")
    return p.parse_args(argv)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bpf_program_count() -> int | None:
    if shutil.which("bpftool") is None:
        return None
    r = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return sum(1 for line in r.stdout.splitlines() if line[:1].isdigit())


def preflight() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)"
    try:
        import syshub.probe  # noqa: F401
    except ImportError as e:
        return f"syshub native module not importable: {e} (run `maturin develop --release`)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name, fn in SCENARIOS.items():
            doc = (sys.modules[fn.__module__].__doc__ or "").strip().split("\n\n")[0]
            line = " ".join(doc.split()).removeprefix(f"{name}: ")
            print(f"{name:12s} {line}")
        return 0
    why = preflight()
    if why:
        print(f"benches: {why}", file=sys.stderr)
        return 2
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir: Path = args.out or HERE / "results" / stamp
    ncpu = os.cpu_count() or 1
    pin = not args.no_pin and ncpu >= 2
    settings = Settings(
        quick=args.quick,
        out_dir=out_dir,
        cache_dir=args.cache_dir,
        loop_cpu=0 if pin else None,
        consumer_cpus=set(range(1, ncpu)) if pin else None,
    )
    # Threads and processes started from here on (the probe's reader thread,
    # peer tools) inherit this; the workload pins itself to CPU 0.
    pin_self(settings.consumer_cpus)
    names = args.scenario or list(SCENARIOS)
    progress(settings, f"benches: {'quick' if args.quick else 'full'} run of {', '.join(names)}")
    progress(settings, f"benches: building workloads in {settings.cache_dir}")
    loop_bin = build.build_loop(settings.cache_dir)
    ceiling: tuple[Path, Path] | None = None
    ceiling_note = ""
    try:
        ceiling = build.build_ceiling(settings.cache_dir)
    except build.BuildError as e:
        ceiling_note = f"C + libbpf ceiling not built: {e}"
        progress(settings, f"benches: {ceiling_note}")
    ctx = Context(settings, loop_bin, ceiling, ceiling_note)

    load0 = loadavg()
    meta: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benches", shlex.join(argv if argv is not None else sys.argv[1:])]
        ).strip(),
        "quick": args.quick,
        "scenarios": names,
        "kernel": platform.release(),
        "cpus": ncpu,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "loop_cpu": settings.loop_cpu,
        "consumer_cpus": sorted(settings.consumer_cpus) if settings.consumer_cpus else None,
        "load_before": load0,
        "bpf_programs_at_start": bpf_program_count(),
    }
    if load0 and load0[0] > 0.5:
        meta["noise_warning"] = (
            f"load average {load0[0]:.2f} at start: other work was running, rates may be low"
        )
    results: list[ScenarioResult] = []
    for name in names:
        progress(settings, f"== {name}")
        t0 = time.monotonic()
        before = loadavg()
        try:
            r = SCENARIOS[name](ctx)
        except Exception as e:
            r = ScenarioResult(name=name, title=name, description="", status=ERROR)
            r.note = f"{type(e).__name__}: {e}"
            r.notes.append(traceback.format_exc())
            progress(settings, f"{name}: ERROR {r.note}")
        r.elapsed_s = time.monotonic() - t0
        r.load_before, r.load_after = before, loadavg()
        results.append(r)
        acct = "holds" if r.accounting_ok() else "FAILS"
        progress(settings, f"{name}: {r.status}, accounting {acct}, {r.elapsed_s:.1f} s")
    meta["load_after"] = loadavg()
    meta["elapsed_s"] = round(time.monotonic() - settings.started, 1)
    report.write_all(out_dir, meta, results)
    progress(settings, f"benches: wrote {out_dir}/results.json, results.md")
    for r in results:
        for t in r.targets:
            if t.met is not None:
                status = "met" if t.met else "NOT met"
                progress(settings, f"target [{r.name}] {t.what}: {t.value} ({t.target}) {status}")
    failed = [r.name for r in results if r.status == ERROR or not r.accounting_ok()]
    if failed:
        progress(settings, f"benches: errors or accounting failures in {', '.join(failed)}")
        return 1
    return 0
