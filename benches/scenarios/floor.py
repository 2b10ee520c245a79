"""floor: syshub against the hook floor (issue 15). A getppid loop and an
openat loop, each (a) untraced, (b) traced by count-only programs on the same
per-syscall tracepoints (benches/ceiling/floor.bpf.c): the enter + exit pair,
and (b') the exit hook alone; for openat the first program of the call also
reads the path, 256 bytes, as syshub's default capture does; (c) traced by
syshub with the Python batch consumer (every call delivered, default filter:
path capture on for openat), (c') the same with durations=True where the
probe has that option (the entry hook too), (d) the C + libbpf ceiling
(getppid only).

The openat loop opens a path that does not exist (ENOENT): one call per
iteration, no descriptor and so no close() to muddy the per-call figures."""

from __future__ import annotations

import dataclasses
import inspect
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
    drain,
    fmt_rate,
    key_checks,
    key_totals,
    median,
)
from benches.scenarios.floor_report import READER_THREAD, VARIANTS, report
from benches.scenarios.peers import PeerError, run_ceiling
from benches.scenarios.throughput import DEFAULT_RING, BatchConsumer
from benches.workload import Loop

MISSING_PATH = "/dev/shm/syshub-bench-absent"
SYSCALLS = ("getppid", "openat")
FLOOR_HOOKS = {"floor": "pair", "floor_exit": "exit"}


def has_durations() -> bool:
    """Whether this syshub's add_filter has the ``durations`` option."""
    return "durations" in inspect.signature(syshub.Probe.add_filter).parameters


def _loop(ctx: Context, mode: str, secs: float) -> Loop:
    extra = ["--path", MISSING_PATH] if mode == "openat" else []
    return Loop(ctx, mode, secs=secs, extra=extra)


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
    """Add the loop's CPU ns per call (the BPF programs run in the loop's
    syscalls, so their time is the loop's system time). Other load stretches
    it less than wall-clock rates: time preempted is not in it, though cache
    contention and a busy host still are (seen: untraced getppid 130-350 ns
    per call at load 5 on the 2-vCPU VM)."""
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


@contextmanager
def _floor_loader(floor: tuple[Path, Path], mode: str, hooks: str) -> Iterator[Any]:
    """The floor loader, attached (it printed "ready"); killed if still there."""
    exe, obj = floor
    cons = subprocess.Popen(
        [str(exe), str(obj), "--syscall", mode, "--hooks", hooks],
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
        yield cons
    finally:
        if cons.poll() is None:
            cons.kill()
            cons.wait()


def run_floor(
    ctx: Context,
    floor: tuple[Path, Path],
    mode: str,
    hooks: str,
    secs: float,
    label: str,
    on_attached: Callable[[set[int]], Any] | None = None,
) -> tuple[dict[str, Any], Check]:
    """One loop run under the floor loader (``hooks``: pair or exit). The hook
    counts are host-wide (the floor filters nothing), so they cover the
    loop's calls and a few more: a non-strict check shows it.
    ``on_attached(program ids)`` as for :func:`run_syshub`."""
    with _loop(ctx, mode, secs) as loop:
        progs0 = bpfstats.all_ids() if on_attached else set()
        with _floor_loader(floor, mode, hooks) as cons:
            around = on_attached(bpfstats.all_ids() - progs0) if on_attached else nullcontext()
            with around:
                loop.start()
                rep = loop.finish()
            cons.send_signal(signal.SIGINT)
            out, err = cons.communicate(timeout=30)
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise PeerError(f"floor loader printed no result: {err.strip()}")
    d: dict[str, Any] = json.loads(lines[-1])
    first = int(d["exit"] if hooks == "exit" else d["enter"])
    m = {
        "calls_per_s": rep.calls_per_s,
        "calls": rep.calls,
        "hooks": hooks,
        "enter_runs": d["enter"],
        "exit_runs": d["exit"],
        "path_faults": d["path_faults"],
        "loader_cpu_s": d["cpu_s"],
        "loop": rep.to_json(),
    }
    check = Check(
        label=f"{label}: the floor's first hook ran for every loop call (host-wide count, "
        "shown only)",
        matched=rep.calls,
        delivered=min(first, rep.calls),
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
    filter_kw: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Check]]:
    """One loop run traced by syshub (one filter: the loop's pid namespace and
    ``mode``, default captures, plus ``filter_kw``), every event delivered to
    the batch consumer.
    ``on_attached(program ids)`` may return a context manager around the
    timed part (the bpf_stats runs use it)."""
    progs0 = bpfstats.all_ids() if on_attached else set()
    readers0 = _reader_tids()
    probe = syshub.Probe(DEFAULT_RING)
    consumer = BatchConsumer()
    try:
        readers = _new_reader_tids(readers0)
        with _loop(ctx, mode, secs) as loop:
            probe.add_filter(loop.pid_ns, mode, **(filter_kw or {}))
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


def bpf_costs(
    ctx: Context, floor: tuple[Path, Path], mode: str, variant: str, secs: float
) -> tuple[dict[str, Any], list[Check]]:
    """One run of a floor or syshub variant with the statistics on:
    ({programs: {name: runs, ns_per_run}, calls: the loop's calls}, checks)."""
    out: dict[str, Any] = {}

    def around(ids: set[int]) -> Any:
        return _costs_into(out, ids)

    label = f"bpf_stats {variant} {mode}"
    if variant in FLOOR_HOOKS:
        m, check = run_floor(ctx, floor, mode, FLOOR_HOOKS[variant], secs, label, around)
        checks = [check]
    else:
        kw = {"durations": True} if variant == "syshub_durations" else None
        m, checks = run_syshub(ctx, mode, secs, label, around, kw)
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
            "tracepoints syshub uses (a per-CPU counter increment), the enter + exit pair, "
            "and (b') the exit hook alone; for openat the call's first program also reads the "
            "path, 256 bytes, into a per-CPU buffer (at exit through the saved registers); no "
            "filter; (c) syshub with the Python batch consumer (one filter: the loop's "
            "namespace, default options: the openat path captured); (c') the same with "
            "durations=True where add_filter has it; (d) the C + libbpf ceiling (getppid). "
            "Variants alternate per repetition; medians; ns/call = 1e9 / rate; added = ns - "
            "ns(a); rate / floor = rate(x) / rate(floor). Reader CPU: the probe's ring reader "
            f"thread (found by its name {READER_THREAD!r} in /proc/self/task; schedstat run "
            "time) from the loop's start to the end of the drain, per million events "
            "delivered. CPU ns/call: the loop's own CPU time per call (getrusage "
            "RUSAGE_CHILDREN around the run, less a no-call run's start-up and the floor "
            "loader's own CPU; the BPF programs run in the loop's syscalls, so they are in "
            "it), which other load on the machine stretches less than wall time; floor CPU / "
            "CPU is the ratio on that basis."
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
    variants = [v for v in VARIANTS if v != "syshub_durations" or has_durations()]
    if "syshub_durations" not in variants:
        res.notes.append("(c') skipped: this syshub's add_filter has no durations option")
    if ctx.ceiling is None:
        variants.remove("ceiling")
        res.notes.append(f"(d) ceiling skipped: {ctx.ceiling_note}")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc: {v: [] for v in variants if v != "ceiling" or sc == "getppid"} for sc in SYSCALLS
    }
    for rep in range(reps):
        for sc, by_variant in runs.items():
            tag = f"{sc} rep {rep + 1}"
            for v in by_variant:
                c0 = _children_cpu_s()
                if v == "untraced":
                    m = run_untraced(ctx, sc, secs)
                elif v in FLOOR_HOOKS:
                    m, check = run_floor(ctx, floor, sc, FLOOR_HOOKS[v], secs, f"{v} {tag}")
                    res.checks.append(check)
                elif v.startswith("syshub"):
                    kw = {"durations": True} if v == "syshub_durations" else None
                    m, checks = run_syshub(ctx, sc, secs, f"{v} {tag}", filter_kw=kw)
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
            costs[sc] = {}
            for v in runs[sc]:
                if v in FLOOR_HOOKS or v.startswith("syshub"):
                    costs[sc][v], checks = bpf_costs(ctx, floor, sc, v, secs)
                    res.checks += checks
    else:
        res.notes.append(f"bpf_stats table skipped: {why}")
    report(res, runs, costs)
    return res
