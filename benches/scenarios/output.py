"""output: how fast events leave the process, against the in-process batch
consumer of the same run.

The getppid loop (its own pid namespace) is traced flat out; variants take
turns per repetition:

* ``batch``: ``Probe.poll`` + ``len`` + numpy ``seq`` column (the reference:
  ``throughput``'s batch consumer);
* ``json``: the CLI's ``-o json`` path: a Hub job on the loop's namespace, a
  batch subscription (``Hub.subscribe_batches``), chunks encoded as JSON lines
  in Rust (``EventChunk.to_json``) and written by the CLI's ``EventWriter``
  to a file on tmpfs (rewound every 256 MiB so the run fits in memory);
* ``text``: the same with strace-style text lines;
* ``json per event``: the path before issue 11 (a per-event subscription and
  ``json.dumps(ev.to_dict())`` per event), for comparison;
* ``file floor``: the ``json`` path with the encoder taken out: per event
  the run's first JSON line, already encoded, is written (512 lines per
  write, from one buffer). What the Hub and the file cost without encoding:
  no encoder can make the ``json`` row faster than this one;
* ``grpc unix records`` / ``grpc tls records``: ``syshub agent`` (a
  subprocess) and one Watch stream read by a Python client here, over the
  unix socket and over TCP with TLS and a bearer token (``output_grpc.py``),
  in the records form (the probe's raw records, which the client decodes into
  a Batch: validated records, ``len`` and the ``seq`` column, as the batch
  consumer);
* ``grpc unix json`` / ``grpc tls json``: the same stream as JSON lines
  (encoded in Rust by the agent; the client counts them).

Then 1, 4 and 16 Watch clients (records form) on one trace over the unix
socket: events/s per client and in total, and per client the growth of the
agent's peak resident memory (``VmHWM``, reset before the clients connect).

Rate = events written (delivered to the consumer) / loop seconds; what the
consumer does not keep up with is counted as kernel or queue drops, and the
accounting identity is checked for the key, the job and the subscriber."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from benches.common import (
    Check,
    Context,
    ScenarioResult,
    Table,
    Target,
    fmt_int,
    fmt_rate,
    key_checks,
    median,
)
from benches.scenarios.output_grpc import QUEUE, grpc_run, running_agent
from benches.scenarios.throughput import DEFAULT_RING, BatchConsumer, traced_run
from benches.workload import Loop

TARGET_JSON_RATIO = 0.8
ROLL_BYTES = 256 << 20
#: Lines per write in the ``file floor`` variant (as the Rust writer's pieces).
FLOOR_LINES = 512
VARIANTS = (
    "batch",
    "json",
    "text",
    "json per event",
    "file floor",
    "grpc unix records",
    "grpc tls records",
    "grpc unix json",
    "grpc tls json",
)
#: The gRPC rows held to the target: the records form (what syshub's Python
#: client decodes itself); JSON lines are measured next to them.
GRPC_TARGETS = ("grpc unix records", "grpc tls records")
CLIENTS = (1, 4, 16)


def _out_file() -> IO[bytes]:
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.TemporaryFile(dir=where)


class _Sink:
    """A consumer thread: takes what the subscription holds and writes it."""

    def __init__(self, take: Callable[[], int], f: IO[bytes]) -> None:
        self.take = take
        self.f = f
        self.stop = threading.Event()
        self.written = 0
        self.t_last = 0.0
        self.thread = threading.Thread(target=self._run, name="bench-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.pump()

    def pump(self) -> int:
        n = self.take()
        if n:
            self.written += n
            self.t_last = time.perf_counter()
            if self.f.tell() > ROLL_BYTES:
                self.f.seek(0)
                self.f.truncate()
        return n

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        while self.pump():
            pass


def hub_run(
    ctx: Context, variant: str, secs: float, label: str
) -> tuple[dict[str, Any], list[Check]]:
    """One traced loop through the Hub with the CLI's writer."""
    from syshub import Hub, HubConfig, Job, Trace
    from syshub import Target as JobTarget
    from syshub.cli.output import EventWriter
    from syshub.topology import LocalObserver

    checks: list[Check] = []
    hub = Hub(HubConfig(ring_bytes=DEFAULT_RING), observer=LocalObserver())
    f = _out_file()
    with hub, Loop(ctx, "getppid", secs=secs) as loop:
        job = Job(
            Trace.new("bench-output", ["getppid"]), target=JobTarget.pid_namespace(loop.pid_ns)
        )
        if variant == "json per event":
            sub: Any = hub.subscribe(job)
            dumps = json.JSONEncoder(separators=(",", ":")).encode

            def take() -> int:
                evs = sub.get_batch(16384, timeout=0.05)
                if evs:
                    f.write("".join([dumps(ev.to_dict()) + "\n" for ev in evs]).encode())
                    f.flush()
                return len(evs)
        elif variant == "file floor":
            sub = hub.subscribe_batches(job, maxsize=QUEUE)
            fd = f.fileno()
            lines: list[memoryview] = []

            def take() -> int:
                chunks = sub.get_chunks(16384, timeout=0.05)
                n = sum(len(c) for c in chunks)
                if n and not lines:
                    line = chunks[0].to_json().split(b"\n", 1)[0] + b"\n"
                    lines.append(memoryview(line * FLOOR_LINES))
                for k in range(0, n, FLOOR_LINES):
                    piece = lines[0][: min(FLOOR_LINES, n - k) * (len(lines[0]) // FLOOR_LINES)]
                    while piece:
                        piece = piece[os.write(fd, piece) :]
                return n
        else:
            # As `syshub trace --queue QUEUE` (the gRPC streams ask for the same).
            sub = hub.subscribe_batches(job, maxsize=QUEUE)
            writer = EventWriter(f, "bench", variant)

            def take() -> int:
                chunks = sub.get_chunks(16384, timeout=0.05)
                writer.write(chunks)
                return sum(len(c) for c in chunks)

        hub.run_job(job)
        sink = _Sink(take, f)
        t0 = time.perf_counter()
        loop.start()
        report = loop.finish()
        hub.delete_trace(job)  # routes what the kernel emitted, then closes the queue
        sink.finish()
        st = hub.stats()
        assert st.probe is not None
        checks += key_checks(st.probe, {loop.pid_ns}, f"{label} kernel")
        js = st.jobs[job.job_id]
        checks.append(Check(f"{label} job", js.matched, js.delivered, js.dropped, js.sampled_out))
        (ss,) = js.subscribers
        checks.append(
            Check(f"{label} subscriber", js.delivered, ss.delivered + ss.queued, ss.dropped, 0)
        )
        if sink.written != ss.delivered:
            checks.append(Check(f"{label} written = delivered", ss.delivered, sink.written, 0, 0))
    f.close()
    wall = max(sink.t_last - t0, 1e-9)
    m = {
        "variant": variant,
        "loop_calls_per_s": report.calls_per_s,
        "matched": js.matched,
        "written": sink.written,
        "kernel_dropped": js.dropped,
        "queue_dropped": ss.dropped,
        "written_per_loop_s": sink.written / report.secs,
        "consumer_events_per_s": sink.written / wall,
    }
    return m, checks


def batch_run(ctx: Context, secs: float, label: str) -> tuple[dict[str, Any], list[Check]]:
    m, checks = traced_run(ctx, BatchConsumer(), DEFAULT_RING, secs, label)
    return {
        "variant": "batch",
        "loop_calls_per_s": m["loop_calls_per_s"],
        "matched": m["matched"],
        "written": m["delivered"],
        "kernel_dropped": m["dropped"],
        "queue_dropped": 0,
        "written_per_loop_s": m["delivered_per_loop_s"],
        "consumer_events_per_s": m["consumer_events_per_s"],
    }, checks


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    secs: float = s.pick(0.2, 2.0)
    reps: int = s.pick(1, 3)
    res = ScenarioResult(
        name="output",
        title="Events out of the process (Rust encoders) vs the batch consumer",
        description=(
            "A getppid loop (own pid namespace, CPU 0) traced flat out; the variants take "
            "turns per repetition. batch: Probe.poll + numpy seq column. json / text: the "
            "CLI's path (Hub batch subscription, chunks encoded in Rust, the CLI's "
            "EventWriter to a tmpfs file). json per event: the path before (per-event "
            "subscription, json.dumps(to_dict())). Rate = events written / loop seconds; "
            "ratio = that rate / the batch consumer's median in the same run."
        ),
        params={"secs": secs, "reps": reps, "ring_bytes": DEFAULT_RING},
    )
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    fan: list[dict[str, Any]] = []
    with running_agent() as agent:
        for rep in range(reps):
            for v in VARIANTS:
                label = f"{v} rep {rep + 1}"
                if v == "batch":
                    m, checks = batch_run(ctx, secs, label)
                elif v.startswith("grpc"):
                    _, transport, fmt = v.split()
                    m, checks = grpc_run(ctx, agent, transport, 1, secs, label, fmt)
                else:
                    m, checks = hub_run(ctx, v, secs, label)
                runs[v].append(m)
                res.checks += checks
                ctx.say(
                    f"output: {label}: loop {fmt_rate(m['loop_calls_per_s'])} calls/s, written "
                    f"{fmt_rate(m['written_per_loop_s'])}/s, dropped {m['kernel_dropped']} kernel "
                    f"+ {m['queue_dropped']} queue"
                )
        for n in s.pick(CLIENTS[:2], CLIENTS):
            m, checks = grpc_run(ctx, agent, "unix", n, secs, f"grpc unix {n} clients", "records")
            fan.append(m)
            res.checks += checks
            ctx.say(
                f"output: grpc unix, {n} clients: {fmt_rate(m['total_events_per_s'])} ev/s in "
                f"total, {m['rss_per_client'] / 1e6:.1f} MB per client, "
                f"dropped {m['queue_dropped']}"
            )
    base = median(r["written_per_loop_s"] for r in runs["batch"])
    summary: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for v, rs in runs.items():
        rate = median(r["written_per_loop_s"] for r in rs)
        d = {
            "written_per_loop_s": rate,
            "loop_calls_per_s": median(r["loop_calls_per_s"] for r in rs),
            "ratio_to_batch": rate / base if base else None,
            # Each repetition against the batch run just before it: the loop's
            # own speed drifts between minutes on a shared VM.
            "paired_ratio": median(
                r["written_per_loop_s"] / b["written_per_loop_s"]
                for r, b in zip(rs, runs["batch"], strict=True)
                if b["written_per_loop_s"]
            ),
            "kernel_dropped": sum(r["kernel_dropped"] for r in rs),
            "queue_dropped": sum(r["queue_dropped"] for r in rs),
            "matched": sum(r["matched"] for r in rs),
        }
        summary[v] = d
        ok = all(c.ok for c in res.checks if c.label.startswith(f"{v} rep"))
        rows.append(
            [
                v,
                fmt_rate(d["loop_calls_per_s"]),
                fmt_rate(rate),
                f"{d['ratio_to_batch']:.3f}" if d["ratio_to_batch"] is not None else "-",
                f"{d['paired_ratio']:.3f}",
                f"{fmt_int(d['kernel_dropped'] + d['queue_dropped'])} / {fmt_int(d['matched'])}",
                "yes" if ok else "NO",
            ]
        )
    res.tables.append(
        Table(
            title=f"Output paths, {secs:g} s runs, median of {reps}",
            columns=[
                "variant",
                "loop calls/s",
                "events written/s",
                "vs batch",
                "paired (median per rep)",
                "dropped / matched",
                "accounting",
            ],
            rows=rows,
        )
    )
    res.tables.append(
        Table(
            title=f"gRPC Watch streams over the unix socket, records form, {secs:g} s runs",
            columns=[
                "clients",
                "loop calls/s",
                "events/s per client (min / max)",
                "events/s total",
                "dropped / matched (all clients)",
                "agent peak memory growth per client",
            ],
            rows=[
                [
                    str(m["clients"]),
                    fmt_rate(m["loop_calls_per_s"]),
                    f"{fmt_rate(min(m['per_client_events_per_s']))} / "
                    f"{fmt_rate(max(m['per_client_events_per_s']))}",
                    fmt_rate(m["total_events_per_s"]),
                    f"{fmt_int(m['queue_dropped'])} / "
                    f"{fmt_int(sum(p['matched'] for p in m['per_stream']))}",
                    f"{m['rss_per_client'] / 1e6:.1f} MB",
                ]
                for m in fan
            ],
        )
    )
    res.metrics = {"summary": summary, "runs": runs, "clients": fan}
    j = summary["json"]
    floor = summary["file floor"]
    res.targets.append(
        Target(
            what="JSON lines to a file, as a ratio to the in-process batch consumer, 0 drops",
            target=f">= {TARGET_JSON_RATIO} with 0 drops",
            value=j["ratio_to_batch"],
            unit="ratio",
            met=(j["ratio_to_batch"] or 0) >= TARGET_JSON_RATIO
            and j["kernel_dropped"] + j["queue_dropped"] == 0,
            note=f"{fmt_rate(j['written_per_loop_s'])}/s vs batch {fmt_rate(base)}/s; "
            f"paired per repetition {j['paired_ratio']:.3f}; the same lines written without "
            f"encoding (file floor) {fmt_rate(floor['written_per_loop_s'])}/s "
            f"(ratio {floor['ratio_to_batch'] or 0:.3f}); json / file floor "
            f"{j['written_per_loop_s'] / max(floor['written_per_loop_s'], 1):.3f}",
        )
    )
    for v in GRPC_TARGETS:
        g = summary[v]
        js = summary[v.replace("records", "json")]
        res.targets.append(
            Target(
                what=f"{v.replace('grpc', 'gRPC stream to one Python client,')}: ratio to the "
                "in-process batch consumer, 0 drops",
                target=f">= {TARGET_JSON_RATIO} with 0 drops",
                value=g["ratio_to_batch"],
                unit="ratio",
                met=(g["ratio_to_batch"] or 0) >= TARGET_JSON_RATIO
                and g["kernel_dropped"] + g["queue_dropped"] == 0,
                note=f"{fmt_rate(g['written_per_loop_s'])}/s vs batch {fmt_rate(base)}/s; "
                f"paired per repetition {g['paired_ratio']:.3f}; as JSON lines "
                f"{fmt_rate(js['written_per_loop_s'])}/s (ratio {js['ratio_to_batch'] or 0:.3f})",
            )
        )
    return res
