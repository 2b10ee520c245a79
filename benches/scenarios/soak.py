"""soak: a Hub under churn for a long time (one hour by default; not CI).

Pid namespaces ("containers", the C workload calling getppid and sleeping
2 ms, announced to a LocalObserver) start at RATE per second and stop after a
few seconds; Traces of their sleeps (clock_nanosleep) selecting them are
created and deleted every few seconds, each read by a subscriber. Sampled
every SAMPLE_S: the process's memory (RSS), file descriptors, threads, and
the entries of the probe's hash maps (filters, read counts, scope tasks, read
with bpftool; the counters are an array). Flat means: RSS in the last fifth of
the samples no higher than in the first fifth plus a small allowance, and
descriptors, threads and map entries back to their values before the first
container once the last one stopped and the last Trace was deleted. Every
Trace balances exactly when deleted (then the Hub forgets its job, as the
agent does), every probe key at the end:
matched == delivered + dropped + sampled_out.

Run: ``python -m benches --scenario soak`` (``SYSHUB_SOAK_S`` seconds,
default 3600; 8 with ``--quick``); CI runs :func:`soak` for 60 s
(tests/integration/test_soak.py).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benches.common import Check, Context, ScenarioResult, Table
from syshub import Hub, HubConfig, Probe, Subscription, Trace
from syshub.hub.retention import forget_job
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

SAMPLE_S = 5.0
# intent: the containers' sleeps, not their getppid: the loops of the floor,
# idle and output scenarios call getppid, and a soak beside them must not put
# its program on their calls' path
TRACED = "clock_nanosleep"
NAMESPACE = "soak"


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    threads: int
    maps: dict[str, int]
    containers: int
    traces: int
    py_blocks: int = 0
    """Python's allocated memory blocks (``sys.getallocatedblocks``)."""


@dataclass
class SoakReport:
    secs: float
    started: int = 0
    stopped: int = 0
    traces: int = 0
    events: int = 0
    samples: list[Sample] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)
    """Python objects by type: last sample minus first (the 10 that grew most)."""
    idle_before: Sample | None = None
    """The process with the Hub started, before any container or Trace."""
    idle_after: Sample | None = None
    """The same once every container stopped and every Trace was deleted: a leak of
    descriptors, threads or map entries shows here without the live containers' and
    Traces' own (which make the in-run samples move by ~15 fds)."""

    def idle_growth(self) -> dict[str, float]:
        """``idle_after`` minus ``idle_before``, per measure (empty if either is missing)."""
        a, b = self.idle_before, self.idle_after
        if a is None or b is None:
            return {}
        out: dict[str, float] = {n: getattr(b, n) - getattr(a, n) for n in ("fds", "threads")}
        for m in set(a.maps) | set(b.maps):
            out[f"map:{m}"] = b.maps.get(m, 0) - a.maps.get(m, 0)
        return out

    def growth(self) -> dict[str, float]:
        """Last fifth minus first fifth of the samples (max of each), per measure."""
        n = max(1, len(self.samples) // 5)
        first, last = self.samples[:n], self.samples[-n:]
        out: dict[str, float] = {}
        for name in ("rss_kib", "fds", "threads", "py_blocks"):
            out[name] = max(getattr(s, name) for s in last) - max(getattr(s, name) for s in first)
        for m in self.samples[0].maps if self.samples else {}:
            out[f"map:{m}"] = max(s.maps.get(m, 0) for s in last) - max(
                s.maps.get(m, 0) for s in first
            )
        return out


def _status(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _object_counts() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects())


def _map_ids() -> set[int]:
    ids: set[int] = set()
    for entry in Path("/proc/self/fdinfo").iterdir():
        try:
            for line in entry.read_text().splitlines():
                if line.startswith("map_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def map_entries() -> dict[str, int]:
    """Entries of every hash map this process holds, by map name (bpftool)."""
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out: dict[str, int] = {}
    for ident in sorted(_map_ids()):
        show = subprocess.run([tool, "-j", "map", "show", "id", str(ident)], capture_output=True)
        if show.returncode != 0:
            continue
        info = json.loads(show.stdout)
        if info.get("type") != "hash":
            continue
        dump = subprocess.run([tool, "-j", "map", "dump", "id", str(ident)], capture_output=True)
        if dump.returncode == 0:
            name = str(info.get("name", ident))
            out[name] = out.get(name, 0) + len(json.loads(dump.stdout))
    return out


class Churn:
    """Containers started at ``rate``/s, each stopped ``life`` seconds later."""

    def __init__(self, loop_bin: Path, obs: LocalObserver, rate: float, life: float) -> None:
        self.loop_bin, self.obs, self.rate, self.life = loop_bin, obs, rate, life
        self.live: deque[tuple[float, NamespacedProcess, Container]] = deque()
        self.started = self.stopped = 0
        self._next = time.monotonic()
        self.namespaces: set[int] = set()
        self.closing = False

    def step(self, now: float) -> None:
        while self.live and now - self.live[0][0] >= self.life:
            _, proc, c = self.live.popleft()
            self.obs.stop_container(c)
            proc.kill()
            proc.wait(timeout=10)
            proc.close()
            self.stopped += 1
        while not self.closing and now >= self._next:
            # intent: after a stall (a loaded machine) resume at the rate from
            # now rather than starting every missed container at once
            self._next = max(self._next, now - 1.0) + 1.0 / self.rate
            argv = [str(self.loop_bin), "tick", "--secs", "3600", "--interval-us", "2000"]
            proc = NamespacedProcess(argv, stdout=subprocess.DEVNULL)
            proc.release()
            self.started += 1
            c = Container(
                id=f"soak-{self.started}",
                name=f"c{self.started}",
                pid=proc.pid,
                pid_ns=proc.pid_ns,
                pod=f"p{self.started}",
                namespace=NAMESPACE,
            )
            self.namespaces.add(proc.pid_ns)
            self.obs.start_container(c)
            self.live.append((now, proc, c))

    def close(self) -> None:
        """Stop every live container; start no more."""
        self.closing = True
        self.life = 0.0
        self.step(time.monotonic())


def _sample(t: float, containers: int, traces: int) -> Sample:
    return Sample(
        t=round(t, 1),
        rss_kib=_status("VmRSS"),
        fds=len(os.listdir("/proc/self/fd")),
        threads=_status("Threads"),
        maps=map_entries(),
        containers=containers,
        traces=traces,
        py_blocks=sys.getallocatedblocks(),
    )


def _settled(t0: float, before: Sample, wait_s: float = 5.0) -> Sample:
    """The idle sample at the end, taken once descriptors and threads are back to
    ``before`` (the Hub lets go of a stopped container's namespace on its own
    thread) or after ``wait_s``, whichever comes first."""
    deadline = time.monotonic() + wait_s
    while True:
        gc.collect()
        s = _sample(time.monotonic() - t0, 0, 0)
        if (s.fds <= before.fds and s.threads <= before.threads) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def _drain(subs: list[tuple[Trace, Subscription]]) -> int:
    return sum(len(s.get_batch(65536, timeout=0)) for _, s in subs)


def soak(
    loop_bin: Path,
    secs: float,
    *,
    rate: float = 5.0,
    life: float = 2.0,
    trace_every: float = 3.0,
    trace_life: float = 7.0,
    sample_s: float = SAMPLE_S,
    say: Any = None,
) -> SoakReport:
    """Run the soak for ``secs``; see the module docstring."""
    rep = SoakReport(secs=secs)
    obs = LocalObserver()
    probe = Probe(4 << 20, tracepoint_syscalls=8)
    hub = Hub(HubConfig(ring_bytes=4 << 20), obs, probe=probe)
    hub.start()
    churn = Churn(loop_bin, obs, rate, life)
    rep.idle_before = _sample(0.0, 0, 0)
    subs: list[tuple[Trace, Subscription]] = []
    created: list[tuple[float, Trace]] = []
    t0 = time.monotonic()
    # Samples start once containers and Traces have reached their steady count.
    next_trace, next_sample = t0, t0 + min(secs / 4, life + trace_life + 1)
    first_objects: Counter[str] | None = None
    try:
        while (now := time.monotonic()) - t0 < secs:
            churn.step(now)
            if now >= next_trace:
                next_trace += trace_every
                tr = Trace.new(f"soak-{rep.traces}", [TRACED], namespace=NAMESPACE)
                hub.run_trace(tr)
                subs.append((tr, hub.subscribe(tr)))
                created.append((now, tr))
                rep.traces += 1
            while created and now - created[0][0] >= trace_life:
                _, tr = created.pop(0)
                hub.delete_trace(tr)
                rep.events += sum(_drain([p]) for p in subs if p[0] is tr)
                subs = [p for p in subs if p[0] is not tr]
                # Its counts are final: checked now, then the Hub forgets the job
                # (as the agent does for deleted traces; else every job stays in memory).
                js = hub.stats().jobs[tr.status.job_id]
                rep.checks.append(
                    Check(f"job {js.job_id}", js.matched, js.delivered, js.dropped, js.sampled_out)
                )
                forget_job(hub, js.job_id)
            rep.events += _drain(subs)
            if now >= next_sample:
                next_sample += sample_s
                rep.samples.append(_sample(now - t0, len(churn.live), len(created)))
                if first_objects is None:
                    first_objects = _object_counts()
                elif now + sample_s - t0 >= secs:  # the last sample
                    grew = (_object_counts() - first_objects).most_common(10)
                    rep.objects = dict(grew)
                if say is not None:
                    say(f"soak: {asdict(rep.samples[-1])}")
            time.sleep(0.02)
        for _, tr in created:
            hub.delete_trace(tr)
        rep.events += _drain(subs)
        churn.close()
        rep.idle_after = _settled(t0, rep.idle_before)
        st = hub.stats()
        for job_id, js in st.jobs.items():
            rep.checks.append(
                Check(f"job {job_id}", js.matched, js.delivered, js.dropped, js.sampled_out)
            )
        assert st.probe is not None
        for k in st.probe.keys:
            rep.checks.append(
                Check(
                    f"key {k.pid_ns}/{k.syscall}", k.matched, k.delivered, k.dropped, k.sampled_out
                )
            )
            if k.pending:
                rep.errors.append(f"key {k.pid_ns}/{k.syscall}: {k.pending} pending at the end")
    finally:
        churn.close()
        hub.stop()
        probe.close()
    rep.started, rep.stopped = churn.started, churn.stopped
    return rep


def run(ctx: Context) -> ScenarioResult:
    secs = float(os.environ.get("SYSHUB_SOAK_S", ctx.settings.pick(8, 3600)))
    res = ScenarioResult(
        name="soak",
        title="Soak: containers and Traces churning for a long time",
        description=__doc__ or "",
        params={"secs": secs, "rate": 5.0, "sample_s": SAMPLE_S},
    )
    # --quick (the CI smoke run of every scenario): a few seconds, samples every second.
    rep = soak(ctx.loop_bin, secs, say=ctx.say, sample_s=1.0 if secs < 60 else SAMPLE_S)
    res.checks = rep.checks
    res.metrics = {
        "started": rep.started,
        "stopped": rep.stopped,
        "traces": rep.traces,
        "events": rep.events,
        "growth": rep.growth(),
        "idle_growth": rep.idle_growth(),
        "idle_before": asdict(rep.idle_before) if rep.idle_before else None,
        "idle_after": asdict(rep.idle_after) if rep.idle_after else None,
        "object_growth": rep.objects,
        "errors": rep.errors,
        "samples": [asdict(s) for s in rep.samples],
    }
    maps = sorted({m for s in rep.samples for m in s.maps})
    res.tables.append(
        Table(
            "Samples",
            ["t (s)", "RSS KiB", "fds", "threads", "containers", "traces", *maps],
            [
                [
                    s.t,
                    s.rss_kib,
                    s.fds,
                    s.threads,
                    s.containers,
                    s.traces,
                    *(s.maps.get(m, 0) for m in maps),
                ]
                for s in rep.samples
            ],
        )
    )
    return res
