"""Shared pieces of the benchmark harness: run settings, the result model,
progress output, small statistics helpers and the accounting check."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syshub.probe import ProbeStats

# Status values of a scenario result.
OK = "ok"
NOT_AVAILABLE = "n/a"
SKIPPED = "skipped"
ERROR = "error"


@dataclass
class Settings:
    """What the user asked for, plus where things go."""

    quick: bool
    out_dir: Path
    cache_dir: Path
    loop_cpu: int | None
    consumer_cpus: set[int] | None
    started: float = field(default_factory=time.monotonic)

    def pick(self, quick: Any, full: Any) -> Any:
        """``quick`` in --quick mode, else ``full``."""
        return quick if self.quick else full


def progress(settings: Settings, msg: str) -> None:
    """One progress line on stderr, with the time since the run started."""
    dt = time.monotonic() - settings.started
    sys.stderr.write(f"[{dt:7.1f}s] {msg}\n")
    sys.stderr.flush()


@dataclass
class Table:
    """A Markdown table in results.md."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Target:
    """A performance target from ARCHITECTURE.md and how this run did."""

    what: str
    target: str
    value: float | None
    unit: str
    met: bool | None  # None: not measured in this run
    note: str = ""


@dataclass
class Check:
    """The accounting identity matched == delivered + dropped + sampled_out.

    ``strict`` checks are syshub's own counters (or the ceiling's), which must
    balance exactly; non-strict ones describe a peer tool, whose lost-event
    reports are shown as measured.
    """

    label: str
    matched: int
    delivered: int
    dropped: int
    sampled_out: int
    strict: bool = True

    @property
    def ok(self) -> bool:
        return self.matched == self.delivered + self.dropped + self.sampled_out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["unaccounted"] = self.matched - self.delivered - self.dropped - self.sampled_out
        return d


@dataclass
class Chart:
    """Data for one PNG chart; drawn by report.py when matplotlib is there."""

    file: str
    title: str
    kind: str  # "bar" or "line"
    x: list[Any]
    series: dict[str, list[float | None]]
    xlabel: str = ""
    ylabel: str = ""
    logy: bool = False
    logx: bool = False


@dataclass
class ScenarioResult:
    name: str
    title: str
    description: str
    status: str = OK
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)

    def accounting_ok(self) -> bool:
        return all(c.ok for c in self.checks if c.strict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "note": self.note,
            "params": self.params,
            "metrics": self.metrics,
            "tables": [asdict(t) for t in self.tables],
            "targets": [asdict(t) for t in self.targets],
            "accounting": {
                "ok": self.accounting_ok(),
                "checks": [c.to_json() for c in self.checks],
            },
            "charts": [c.file for c in self.charts],
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 3),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


class Scenario(Protocol):
    def __call__(self, ctx: Context) -> ScenarioResult: ...


@dataclass
class Context:
    """Handed to every scenario."""

    settings: Settings
    loop_bin: Path
    ceiling: tuple[Path, Path] | None  # (consumer binary, BPF object)
    ceiling_note: str

    def say(self, msg: str) -> None:
        progress(self.settings, msg)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def median(xs: Iterable[float]) -> float:
    vals = list(xs)
    return statistics.median(vals) if vals else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def fmt_rate(x: float | None) -> str:
    """Human-readable rate: 1234567 -> '1.23 M'."""
    if x is None or x != x:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def fmt_int(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


def key_checks(stats: ProbeStats, pid_namespaces: set[int], label: str) -> list[Check]:
    """One strict Check per probe key whose pid namespace is in ``pid_namespaces``."""
    return [
        Check(
            label=f"{label}: {k.syscall} @ pid_ns {k.pid_ns}",
            matched=k.matched,
            delivered=k.delivered,
            dropped=k.dropped,
            sampled_out=k.sampled_out,
        )
        for k in stats.keys
        if k.pid_ns in pid_namespaces
    ]


def key_totals(stats: ProbeStats, pid_namespaces: set[int]) -> dict[str, int]:
    """matched/delivered/dropped/sampled_out summed over the keys of some namespaces."""
    tot = {"matched": 0, "delivered": 0, "dropped": 0, "sampled_out": 0, "emitted": 0}
    for k in stats.keys:
        if k.pid_ns in pid_namespaces:
            for f in tot:
                tot[f] += int(getattr(k, f))
    return tot


def drain(
    probe: Any,
    on_batch: Callable[[Any], None],
    *,
    idle_ms: int = 200,
    timeout_s: float = 30.0,
) -> bool:
    """Poll until every emitted record was delivered and a poll came back
    empty; returns False on timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        b = probe.poll(timeout_ms=idle_ms)
        if b:
            on_batch(b)
            continue
        if all(k.pending == 0 for k in probe.stats().keys):
            return True
    return False


def pin_self(cpus: set[int] | None) -> None:
    """Pin the calling thread (and threads/processes it starts later)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
