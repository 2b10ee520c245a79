"""Labelled metrics: kernel series with their container, pod and namespace,
as one JSON-able document (:meth:`MetricsReport.to_dict`) that the agent's
Metrics method returns and ``syshub top`` reads, and the rates between two
reports. Pure: no kernel access here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from syshub.metrics.kernel import Overflow, percentile_ns


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One kernel series with its labels. ``namespace``/``pod``/``container``
    are empty for a pid namespace no known container owns (the host)."""

    namespace: str
    pod: str
    container: str
    pid_ns: int
    nr: int
    syscall: str
    klass: str
    group: str
    errno: int
    error: str
    count: int
    total_ns: int
    buckets: tuple[int, ...]

    def percentile_ns(self, q: float) -> float | None:
        return percentile_ns(self.buckets, q)

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.pid_ns, self.nr, self.errno)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "container": self.container,
            "pid_ns": self.pid_ns,
            "nr": self.nr,
            "syscall": self.syscall,
            "class": self.klass,
            "group": self.group,
            "errno": self.errno,
            "error": self.error,
            "count": self.count,
            "total_ns": self.total_ns,
            "buckets": list(self.buckets),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SeriesRow:
        return SeriesRow(
            namespace=str(d.get("namespace", "")),
            pod=str(d.get("pod", "")),
            container=str(d.get("container", "")),
            pid_ns=int(d.get("pid_ns", 0)),
            nr=int(d.get("nr", -1)),
            syscall=str(d.get("syscall", "")),
            klass=str(d.get("class", "")),
            group=str(d.get("group", "")),
            errno=int(d.get("errno", 0)),
            error=str(d.get("error", "OK")),
            # intent: protobuf's MessageToDict leaves out fields that are 0
            count=int(d.get("count", 0)),
            total_ns=int(d.get("total_ns", 0)),
            buckets=tuple(int(x) for x in d.get("buckets", ())),
        )


@dataclass(frozen=True, slots=True)
class MetricsReport:
    """Every series of one node at one moment, labelled."""

    node: str
    mode: str
    taken_at: float
    """Unix time of the read."""
    rows: tuple[SeriesRow, ...]
    overflow: Overflow
    nomem: int
    max_entries: int
    read_seconds: float
    latency: bool = True
    """Whether calls were timed (False: count-only, no histogram)."""
    untimed: int = 0
    """Calls counted without a duration (latency on, entry not stamped)."""

    @property
    def entries(self) -> int:
        return len(self.rows)

    @property
    def calls(self) -> int:
        return sum(r.count for r in self.rows) + self.overflow.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "mode": self.mode,
            "taken_at": self.taken_at,
            "entries": self.entries,
            "max_entries": self.max_entries,
            "read_seconds": self.read_seconds,
            "nomem": self.nomem,
            "latency": self.latency,
            "untimed": self.untimed,
            "overflow": {
                "count": self.overflow.count,
                "total_ns": self.overflow.total_ns,
                "buckets": list(self.overflow.buckets),
            },
            "rows": [r.to_dict() for r in self.rows],
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> MetricsReport:
        o = d.get("overflow") or {}
        return MetricsReport(
            node=str(d.get("node", "")),
            mode=str(d.get("mode", "")),
            taken_at=float(d.get("taken_at", 0.0)),
            rows=tuple(SeriesRow.from_dict(r) for r in d.get("rows", ())),
            overflow=Overflow(
                int(o.get("count", 0)),
                int(o.get("total_ns", 0)),
                tuple(int(x) for x in o.get("buckets", ())),
            ),
            nomem=int(d.get("nomem", 0)),
            max_entries=int(d.get("max_entries", 0)),
            read_seconds=float(d.get("read_seconds", 0.0)),
            latency=bool(d.get("latency", True)),
            untimed=int(d.get("untimed", 0)),
        )


def _sub(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if len(b) != len(a):
        return a
    return tuple(max(x - y, 0) for x, y in zip(a, b, strict=True))


def delta(now: MetricsReport, before: MetricsReport | None) -> tuple[SeriesRow, ...]:
    """The calls of each series between two reports of one node (a series
    new since ``before``, or pruned and back, counts from zero)."""
    if before is None:
        return now.rows
    old = {r.key: r for r in before.rows}
    out: list[SeriesRow] = []
    for r in now.rows:
        p = old.get(r.key)
        if p is None or p.count > r.count:
            out.append(r)
            continue
        out.append(
            replace(
                r,
                count=r.count - p.count,
                total_ns=max(r.total_ns - p.total_ns, 0),
                buckets=_sub(r.buckets, p.buckets),
            )
        )
    return tuple(out)


def merge(rows: Iterable[SeriesRow], by: tuple[str, ...]) -> dict[tuple[str, ...], SeriesRow]:
    """Rows summed per value of the fields ``by`` (e.g. ``("pod",)``); the
    other label fields of a merged row are those of its first row."""
    out: dict[tuple[str, ...], SeriesRow] = {}
    for r in rows:
        k = tuple(str(getattr(r, f)) for f in by)
        have = out.get(k)
        if have is None:
            out[k] = r
            continue
        n = max(len(have.buckets), len(r.buckets))
        a = have.buckets + (0,) * (n - len(have.buckets))
        b = r.buckets + (0,) * (n - len(r.buckets))
        out[k] = replace(
            have,
            count=have.count + r.count,
            total_ns=have.total_ns + r.total_ns,
            buckets=tuple(x + y for x, y in zip(a, b, strict=True)),
        )
    return out
