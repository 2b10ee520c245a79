"""churn: pid namespaces starting and stopping at increasing rates.

For each start rate, short-lived workloads (each PID 1 of a new pid
namespace, calling getppid about once per millisecond) are started; a filter
is added for each new namespace once it runs and removed when it exits.
Measures filter add/remove time and rate, and the time from the filter add to
the first event (kernel entry time) and to its delivery to Python."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import syshub
from benches.common import (
    Chart,
    Context,
    ScenarioResult,
    Table,
    drain,
    key_checks,
    median,
    percentile,
)
from benches.workload import Loop
from syshub import syscalls as syshub_syscalls

TICK_US = 1000
NR_GETPPID = 110


@dataclass
class Child:
    loop: Loop
    pid_ns: int
    spawn_s: float
    add_start_ns: int
    add_s: float
    first_enter_ns: int | None = None
    first_seen_ns: int | None = None
    remove_s: float | None = None
    attached: bool = False  # the add attached the syscall's hooks (first key)
    detached: bool = False  # the remove detached them (last key)


def _hooked(probe: Any) -> bool:
    """Are getppid's hooks attached now?"""
    return any(nr == NR_GETPPID for nr, _raw in probe.hooked())


def _wait_exec(pid: int, exe_name: str, timeout: float = 2.0) -> None:
    """Wait until ``pid`` runs ``exe_name`` (its comm changes at exec)."""
    comm = exe_name[:15]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    return
        except OSError:
            return
        time.sleep(0.0005)


def _ms(xs: list[float]) -> dict[str, float]:
    return {
        "median": median(xs) * 1e3 if xs else float("nan"),
        "p95": percentile(xs, 95) * 1e3 if xs else float("nan"),
        "max": max(xs) * 1e3 if xs else float("nan"),
    }


def run_rate(
    ctx: Context, probe: Any, rate: float, window: float, lifetime: float
) -> tuple[dict[str, Any], set[int]]:
    by_pid: dict[int, Child] = {}
    live: dict[int, Child] = {}
    # Namespace inodes are reused as soon as a namespace dies: a new child can
    # get the inode of one that exited but whose filter is not removed yet.
    # Filters are refcounted per namespace, as the Hub does.
    users: dict[int, int] = {}
    reused = 0
    done: list[Child] = []
    namespaces: set[int] = set()
    max_live = 0
    t0 = time.monotonic()
    t_end = t0 + window
    next_start = t0

    def see(b: Any) -> None:
        now_ns = time.monotonic_ns()
        tgids = memoryview(b.column("tgid"))
        enters = memoryview(b.column("enter_ns"))
        for i in range(len(b)):
            ch = by_pid.get(tgids[i])
            if ch is not None and ch.first_enter_ns is None:
                ch.first_enter_ns = enters[i]
                ch.first_seen_ns = now_ns

    # The consumer polls on its own thread, so delivery times are the reader's,
    # not the driver's (which blocks while it spawns namespaces).
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            b = probe.poll(timeout_ms=20)
            if b:
                see(b)

    consumer = threading.Thread(target=consume, name="churn-consumer", daemon=True)
    consumer.start()
    try:
        while True:
            now = time.monotonic()
            if now < t_end and now >= next_start:
                s0 = time.perf_counter()
                loop = Loop(
                    ctx,
                    "tick",
                    secs=lifetime,
                    extra=["--interval-us", str(TICK_US)],
                )
                spawn_s = time.perf_counter() - s0
                loop.start()
                # Add the filter once the workload runs its own code, so that
                # add -> first event measures the filter, not the exec.
                _wait_exec(loop.pid, ctx.loop_bin.name)
                hooked = _hooked(probe)
                a0 = time.monotonic_ns()
                probe.add_filter(loop.pid_ns, "getppid")
                add_s = (time.monotonic_ns() - a0) / 1e9
                ch = Child(loop, loop.pid_ns, spawn_s, a0, add_s, attached=not hooked)
                if users.get(loop.pid_ns):
                    reused += 1
                users[loop.pid_ns] = users.get(loop.pid_ns, 0) + 1
                by_pid[loop.pid] = ch
                live[loop.pid] = ch
                namespaces.add(loop.pid_ns)
                max_live = max(max_live, len(live))
                next_start = max(next_start + 1.0 / rate, now)
            else:
                time.sleep(0.002)
            for pid, ch in list(live.items()):
                if not ch.loop.running():
                    users[ch.pid_ns] -= 1
                    if users[ch.pid_ns] == 0:
                        del users[ch.pid_ns]
                        r0 = time.perf_counter()
                        probe.remove_filter(ch.pid_ns, "getppid")
                        ch.remove_s = time.perf_counter() - r0
                        ch.detached = not _hooked(probe)
                    ch.loop.finish()
                    ch.loop.close()
                    done.append(ch)
                    del live[pid]
            if now >= t_end and not live:
                break
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        consumer.join()
        for ch in live.values():
            ch.loop.close()
    drain(probe, see, idle_ms=50)
    adds = [c.add_s for c in done]
    removes = [c.remove_s for c in done if c.remove_s is not None]
    add_attach = [c.add_s for c in done if c.attached]
    add_map = [c.add_s for c in done if not c.attached]
    rm_detach = [c.remove_s for c in done if c.remove_s is not None and c.detached]
    rm_map = [c.remove_s for c in done if c.remove_s is not None and not c.detached]
    to_first = [
        (c.first_enter_ns - c.add_start_ns) / 1e9 for c in done if c.first_enter_ns is not None
    ]
    to_seen = [
        (c.first_seen_ns - c.add_start_ns) / 1e9 for c in done if c.first_seen_ns is not None
    ]
    spawns = [c.spawn_s for c in done]
    ops_time = sum(adds) + sum(removes)
    m: dict[str, Any] = {
        "target_rate": rate,
        "children": len(done),
        "achieved_rate": len(done) / window,
        "elapsed_s": elapsed,
        "max_live_filters": max_live,
        "children_without_event": sum(1 for c in done if c.first_enter_ns is None),
        "spawn_ms": _ms(spawns),
        "add_ms": _ms(adds),
        "remove_ms": _ms(removes),
        "add_attaching_ms": _ms(add_attach) | {"count": len(add_attach)},
        "add_map_only_ms": _ms(add_map) | {"count": len(add_map)},
        "remove_detaching_ms": _ms(rm_detach) | {"count": len(rm_detach)},
        "remove_map_only_ms": _ms(rm_map) | {"count": len(rm_map)},
        "namespace_inode_reused_while_live": reused,
        "filter_ops_per_s_achieved": (len(adds) + len(removes)) / elapsed,
        "filter_ops_per_s_capacity": (len(adds) + len(removes)) / ops_time if ops_time else None,
        "add_to_first_event_ms": _ms(to_first),
        "add_to_delivery_ms": _ms(to_seen),
    }
    return m, namespaces


FAKE_NS_BASE = 1_000_000  # far below real pid namespace inodes (~4026531836 and up)


def key_growth(ctx: Context, max_keys: int, marks: list[int]) -> dict[str, Any]:
    """A long-lived probe seeing many short-lived namespaces: add and remove a
    filter for ``max_keys`` distinct (pid_ns, getppid) keys, timing stats() at
    the ``marks``, until add_filter fails (the kernel keeps per-key counters
    for every key ever traced)."""
    probe = syshub.Probe(1 << 20)
    stats_ms: dict[str, float] = {}
    failed_at: int | None = None
    error = ""
    t0 = time.perf_counter()
    try:
        probe.add_filter(FAKE_NS_BASE - 1, "getppid")  # keeps the hooks attached
        for i in range(max_keys):
            ns = FAKE_NS_BASE + i
            try:
                probe.add_filter(ns, "getppid")
            except Exception as e:
                failed_at = i + 1  # keys already in the map: i fakes + the anchor
                error = f"{type(e).__name__}: {e}"
                break
            probe.remove_filter(ns, "getppid")
            if i + 1 in marks:
                s0 = time.perf_counter()
                probe.stats()
                stats_ms[str(i + 2)] = (time.perf_counter() - s0) * 1e3
                ctx.say(f"churn: {i + 2} keys ever traced: stats() {stats_ms[str(i + 2)]:.1f} ms")
    finally:
        probe.close()
    return {
        "keys_tried": max_keys,
        "key_capacity": failed_at,
        "error": error,
        "stats_ms_by_keys": stats_ms,
        "elapsed_s": time.perf_counter() - t0,
    }


def close_all(ctx: Context, settle_s: float) -> dict[str, Any]:
    """Time ``close()`` of a probe tracing every syscall (one filter each, in
    a namespace nobody is in), ``settle_s`` after the last add_filter."""
    probe = syshub.Probe(1 << 20)
    traced = 0
    try:
        for sc in syshub_syscalls.table():
            try:
                probe.add_filter(FAKE_NS_BASE - 2, sc.nr)
                traced += 1
            except (ValueError, syshub.ProbeError) as e:
                ctx.say(f"churn: close-all: {sc.name} not traced: {e}")
        hooked = probe.hooked()
        time.sleep(settle_s)
    finally:
        t0 = time.perf_counter()
        probe.close()
        close_s = time.perf_counter() - t0
    ctx.say(
        f"churn: close with {traced} syscalls traced ({settle_s:g} s after adding): {close_s:.3f} s"
    )
    return {
        "traced": traced,
        "raw_hooked": sum(1 for _, raw in hooked if raw),
        "settle_s": settle_s,
        "close_s": close_s,
    }


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    rates: list[float] = s.pick([10.0], [5.0, 10.0, 20.0, 40.0])
    window: float = s.pick(0.5, 3.0)
    lifetime: float = s.pick(0.2, 0.5)
    res = ScenarioResult(
        name="churn",
        title="Namespace churn: filter add/remove",
        description=(
            "Workloads in new pid namespaces started at a target rate for a window; each "
            f"calls getppid every {TICK_US} us for its lifetime. A filter (pid_ns, getppid) "
            "is added once each runs its own code and removed when it exits (refcounted per "
            "namespace inode, which the kernel reuses). add->first event = first event's "
            "kernel entry time minus the start of add_filter (bounded below by the workload's "
            "call interval); add->delivered = when a consumer thread polling the probe got "
            "it (reader poll timer). Start rate is limited by spawning NamespacedProcess "
            "(a Python helper per namespace)."
        ),
        params={"rates": rates, "window_s": window, "lifetime_s": lifetime, "tick_us": TICK_US},
    )
    probe = syshub.Probe(4 << 20)
    per_rate: list[dict[str, Any]] = []
    all_ns: set[int] = set()
    try:
        for rate in rates:
            m, namespaces = run_rate(ctx, probe, rate, window, lifetime)
            per_rate.append(m)
            all_ns |= namespaces
            ctx.say(
                f"churn: {rate:g}/s: {m['children']} namespaces, add "
                f"{m['add_ms']['median']:.2f} ms, remove {m['remove_ms']['median']:.2f} ms, "
                f"add->first event {m['add_to_first_event_ms']['median']:.2f} ms"
            )
        drain(probe, lambda b: None, idle_ms=50)
        stats = probe.stats()
        res.checks = key_checks(stats, all_ns, "churn")
        res.metrics = {
            "rates": per_rate,
            "kernel": dataclasses.asdict(stats.kernel),
            "keys": len(res.checks),
        }
    finally:
        probe.close()

    growth_keys: int = s.pick(500, 70_000)
    growth = key_growth(ctx, growth_keys, s.pick([100, 499], [1_000, 10_000, 30_000, 60_000]))
    res.metrics["key_growth"] = growth
    if growth["key_capacity"] is not None:
        res.notes.append(
            f"key growth: after {growth['key_capacity']:,} distinct keys ever traced by one "
            f"probe, add_filter fails ({growth['error']}): per-key counters are never freed, "
            "so a long-lived probe runs out after that many (pid_ns, syscall) keys."
        )
    else:
        res.notes.append(
            f"key growth: {growth_keys:,} distinct keys added and removed, no failure."
        )
    res.tables.append(
        Table(
            title="One probe, many short-lived keys: stats() time by keys ever traced",
            columns=["keys ever traced", "stats() ms"],
            rows=[[f"{int(k):,}", f"{v:.1f}"] for k, v in growth["stats_ms_by_keys"].items()]
            + [
                [
                    "add_filter fails after (keys)",
                    f"{growth['key_capacity']:,}"
                    if growth["key_capacity"]
                    else f"not within {growth_keys:,}",
                ]
            ],
        )
    )

    closes = [close_all(ctx, settle) for settle in (0.0, 1.0)]
    res.metrics["close_all"] = closes
    res.tables.append(
        Table(
            title=(
                "Leaving a trace of every syscall: close() of a probe with one filter per "
                "syscall (tracepoint detaches serialize in the kernel; past a few syscalls "
                "all go through the raw hooks)"
            ),
            columns=["syscalls traced", "on raw hooks", "close after adding (s)", "close() s"],
            rows=[
                [c["traced"], c["raw_hooked"], f"{c['settle_s']:g}", f"{c['close_s']:.3f}"]
                for c in closes
            ],
        )
    )

    def trio(d: dict[str, float]) -> str:
        return f"{d['median']:.2f} / {d['p95']:.2f} / {d['max']:.2f}"

    res.tables.append(
        Table(
            title="Per start rate (times in ms: median / p95 / max)",
            columns=[
                "target starts/s",
                "achieved starts/s",
                "max live filters",
                "add_filter",
                "remove_filter",
                "filter ops/s (achieved / capacity)",
                "add -> first event",
                "add -> delivered",
                "no event",
            ],
            rows=[
                [
                    f"{m['target_rate']:g}",
                    f"{m['achieved_rate']:.1f}",
                    m["max_live_filters"],
                    trio(m["add_ms"]),
                    trio(m["remove_ms"]),
                    f"{m['filter_ops_per_s_achieved']:.0f} / "
                    + (
                        f"{m['filter_ops_per_s_capacity']:.0f}"
                        if m["filter_ops_per_s_capacity"]
                        else "-"
                    ),
                    trio(m["add_to_first_event_ms"]),
                    trio(m["add_to_delivery_ms"]),
                    m["children_without_event"],
                ]
                for m in per_rate
            ],
        )
    )

    def split(d: dict[str, float]) -> str:
        if not d["count"]:
            return "-"
        return f"{d['median']:.2f} / {d['max']:.2f} (n={d['count']:.0f})"

    res.tables.append(
        Table(
            title=(
                "add/remove split by hook transitions (ms, median / max): the first key of a "
                "syscall attaches its tracepoints, the last one detaches them"
            ),
            columns=[
                "target starts/s",
                "add, attaching",
                "add, map only",
                "remove, detaching",
                "remove, map only",
                "inode reused while live",
            ],
            rows=[
                [
                    f"{m['target_rate']:g}",
                    split(m["add_attaching_ms"]),
                    split(m["add_map_only_ms"]),
                    split(m["remove_detaching_ms"]),
                    split(m["remove_map_only_ms"]),
                    m["namespace_inode_reused_while_live"],
                ]
                for m in per_rate
            ],
        )
    )
    res.charts.append(
        Chart(
            file="churn.png",
            title="Filter add -> first event (median)",
            kind="line",
            x=[m["achieved_rate"] for m in per_rate],
            series={
                "add -> first event (kernel)": [
                    m["add_to_first_event_ms"]["median"] for m in per_rate
                ],
                "add -> delivered to Python": [m["add_to_delivery_ms"]["median"] for m in per_rate],
                "add_filter call": [m["add_ms"]["median"] for m in per_rate],
            },
            xlabel="namespace starts/s (achieved)",
            ylabel="ms",
        )
    )
    return res
