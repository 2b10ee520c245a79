"""fanout: K jobs x M subscribers through the Hub.

K trace jobs (all tracing getppid of the same workload namespace, announced
through a LocalObserver) each with M per-event callback subscribers
(``Hub.attach_trace``). The getppid loop runs flat out, so the hub's routing
and the callbacks are the bottleneck: what is not taken is dropped in the
kernel (ring full) or at a full subscriber queue, and counted."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any

from benches.common import (
    NOT_AVAILABLE,
    Chart,
    Check,
    Context,
    ScenarioResult,
    Table,
    Target,
    fmt_int,
    fmt_rate,
    key_checks,
)
from benches.workload import Loop

TARGET_CALLBACK = 500_000
NR_GETPPID = 110


class Counter:
    """A per-event callback that counts (thread-safe enough: one worker each)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, key: str, ev: Any) -> None:
        self.n += 1


def _wait(pred: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def one_combo(
    ctx: Context, jobs_k: int, subs_m: int, secs: float
) -> tuple[dict[str, Any], list[Check]]:
    from syshub import Hub, HubConfig, HubStats, Trace
    from syshub.topology import Container, LocalObserver

    obs = LocalObserver()
    hub = Hub(HubConfig(), observer=obs)
    checks: list[Check] = []
    counters: dict[str, list[Counter]] = {}
    with hub:
        jobs = [hub.run_trace(Trace.new(f"bench-fanout-{k}", ["getppid"])) for k in range(jobs_k)]
        for job in jobs:
            counters[job.job_id] = []
            for _ in range(subs_m):
                c = Counter()
                hub.attach_trace(job, c)
                counters[job.job_id].append(c)
        for job in jobs:
            if not hub.wait_applied(job, timeout=10):
                raise RuntimeError(f"job {job.job_id} did not follow its observer in 10 s")
        with Loop(ctx, "getppid", secs=secs) as loop:
            # in the trace's namespace ("default"), so the jobs' observers select it
            box = Container(
                id=f"bench-{loop.pid_ns}",
                name="loop",
                pid=loop.pid,
                pid_ns=loop.pid_ns,
                pod="bench-fanout",
                namespace="default",
            )
            obs.start_container(box)

            def ready() -> bool:
                st = hub.stats().jobs
                return all(st[j.job_id].keys for j in jobs)

            if not _wait(ready, 10):
                raise RuntimeError("jobs did not pick up the workload namespace in 10 s")
            t0 = time.perf_counter()
            loop.start()
            report = loop.finish()

            # The hub's reader loop may still be routing a batch the probe has
            # already handed over: settled means every count balances and stays
            # the same across two looks.
            last: list[list[tuple[int, ...]]] = [[]]

            def settled() -> bool:
                st = hub.stats()
                assert st.probe is not None
                keys = [k for k in st.probe.keys if k.pid_ns == loop.pid_ns]
                if any(k.pending for k in keys):
                    return False
                snap: list[tuple[int, ...]] = []
                for j in jobs:
                    js = st.jobs[j.job_id]
                    for c, sub in zip(counters[j.job_id], js.subscribers, strict=True):
                        if sub.queued or c.n != sub.delivered:
                            return False
                        if sub.delivered + sub.dropped != js.delivered:
                            return False
                        snap.append((js.delivered, sub.delivered, sub.dropped))
                snap.append(tuple(k.delivered for k in keys))
                same = bool(last[0]) and snap == last[0]
                last[0] = snap
                return same

            drained = _wait(settled, 60, step=0.05)
            wall = time.perf_counter() - t0
            stats: HubStats = hub.stats()
            obs.stop_container(box)
            assert stats.probe is not None
            checks += key_checks(stats.probe, {loop.pid_ns}, f"K={jobs_k} M={subs_m} kernel")
    per_job = []
    for job in jobs:
        js = stats.jobs[job.job_id]
        checks.append(
            Check(
                f"K={jobs_k} M={subs_m} job {job.job_id}",
                js.matched,
                js.delivered,
                js.dropped,
                js.sampled_out,
            )
        )
        for i, s in enumerate(js.subscribers):
            checks.append(
                Check(
                    f"K={jobs_k} M={subs_m} job {job.job_id} subscriber {i}",
                    js.delivered,
                    s.delivered + s.queued,
                    s.dropped,
                    0,
                )
            )
        tot = {
            "matched": js.matched,
            "delivered": js.delivered,
            "dropped": js.dropped,
            "sampled_out": js.sampled_out,
        }
        subs = [dataclasses.asdict(s) for s in js.subscribers]
        per_job.append({"job_id": job.job_id, "total": tot, "subscribers": subs})
    cb_counts = [c.n for cs in counters.values() for c in cs]
    kernel = [k for k in stats.probe.keys if k.nr == NR_GETPPID]
    m = {
        "jobs": jobs_k,
        "subscribers_per_job": subs_m,
        "loop_calls_per_s": report.calls_per_s,
        "loop_calls": report.calls,
        "wall_s": wall,
        "drained": drained,
        "kernel_delivered": sum(k.delivered for k in kernel),
        "kernel_dropped": sum(k.dropped for k in kernel),
        "callback_events": sum(cb_counts),
        "callback_events_per_s_total": sum(cb_counts) / wall,
        "callback_events_per_s_per_subscriber": (sum(cb_counts) / len(cb_counts)) / wall,
        "subscriber_dropped": sum(s["dropped"] for j in per_job for s in j["subscribers"]),
        "routed": stats.routed,
        "unrouted": stats.unrouted,
        "per_job": per_job,
        "threads": threading.active_count(),
    }
    return m, checks


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    res = ScenarioResult(
        name="fanout",
        title="Hub fan-out (K jobs x M subscribers)",
        description=(
            "K jobs tracing getppid of one workload namespace (announced with a "
            "LocalObserver), each with M per-event callback subscribers "
            "(Hub.attach_trace). The loop runs flat out for a fixed time; rates are events "
            "handed to callbacks / wall time from release until every queue drained. "
            "Kernel drops (the hub's reader loop lagging) and subscriber-queue drops are "
            "counted separately."
        ),
    )
    if importlib.util.find_spec("syshub.hub") is None:
        res.status = NOT_AVAILABLE
        res.note = "n/a (hub not available)"
        res.targets.append(
            Target(
                what="per-event Python callback subscriber through the Hub",
                target=f">= {TARGET_CALLBACK:,} events/s",
                value=None,
                unit="events/s",
                met=None,
                note=res.note,
            )
        )
        ctx.say(f"fanout: {res.note}")
        return res
    combos: list[tuple[int, int]] = s.pick([(1, 1), (2, 2)], [(1, 1), (1, 4), (4, 1), (4, 4)])
    secs: float = s.pick(0.2, 2.0)
    res.params = {"combos": combos, "secs": secs}
    runs: list[dict[str, Any]] = []
    for k, m_ in combos:
        m, checks = one_combo(ctx, k, m_, secs)
        runs.append(m)
        res.checks += checks
        ctx.say(
            f"fanout: K={k} M={m_}: {fmt_rate(m['callback_events_per_s_per_subscriber'])} "
            f"ev/s per subscriber, kernel dropped {m['kernel_dropped']}, "
            f"subscriber dropped {m['subscriber_dropped']}"
        )
    res.metrics = {"runs": runs}
    res.tables.append(
        Table(
            title=f"K jobs x M callback subscribers, {secs:g} s of getppid loop",
            columns=[
                "K x M",
                "loop calls/s",
                "kernel delivered / dropped",
                "callback events/s per subscriber",
                "callback events/s total",
                "subscriber drops",
            ],
            rows=[
                [
                    f"{r['jobs']} x {r['subscribers_per_job']}",
                    fmt_rate(r["loop_calls_per_s"]),
                    f"{fmt_int(r['kernel_delivered'])} / {fmt_int(r['kernel_dropped'])}",
                    fmt_rate(r["callback_events_per_s_per_subscriber"]),
                    fmt_rate(r["callback_events_per_s_total"]),
                    fmt_int(r["subscriber_dropped"]),
                ]
                for r in runs
            ],
        )
    )
    one = runs[0]
    res.targets.append(
        Target(
            what="per-event Python callback subscriber through the Hub (K=1, M=1)",
            target=f">= {TARGET_CALLBACK:,} events/s",
            value=round(one["callback_events_per_s_per_subscriber"]),
            unit="events/s",
            met=one["callback_events_per_s_per_subscriber"] >= TARGET_CALLBACK,
            note=f"kernel dropped {one['kernel_dropped']} of {one['loop_calls']} calls",
        )
    )
    res.charts.append(
        Chart(
            file="fanout.png",
            title="Hub fan-out: callback events/s",
            kind="bar",
            x=[f"{r['jobs']}x{r['subscribers_per_job']}" for r in runs],
            series={
                "per subscriber": [r["callback_events_per_s_per_subscriber"] for r in runs],
                "total": [r["callback_events_per_s_total"] for r in runs],
            },
            ylabel="events/s",
        )
    )
    return res
