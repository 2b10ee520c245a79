"""The kernel syscall metrics program, typed: :class:`Metrics` loads it,
attaches its hooks while it is open, and reads per (pid namespace, syscall,
errno) call counts, and with ``latency`` total time and a log2 latency
histogram, as :class:`MetricsSnapshot` values. Python does nothing per
syscall: the kernel aggregates, a snapshot reads the maps.

Counting takes one hook (the syscall exit); ``latency=True`` adds the entry
hook and two clock reads per call, the histogram's price.

This module is the metrics program's public face over ``syshub._native``
(as :mod:`syshub.probe` is the trace probe's)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from syshub import _native, syscalls

#: Latency buckets: bucket b holds calls whose duration in ns has b significant
#: bits (``2**(b-1) <= ns < 2**b``; 0 ns in bucket 0); the last is open-ended.
BUCKETS: int = _native.METRICS_BUCKETS
DEFAULT_MAX_ENTRIES: int = _native.METRICS_MAX_ENTRIES_DEFAULT

Mode = Literal["node", "containers"]


def bucket_upper_ns(b: int) -> float:
    """Exclusive upper bound of bucket ``b`` in ns (``inf`` for the last)."""
    return float("inf") if b >= BUCKETS - 1 else float(1 << b)


def bucket_of(ns: int) -> int:
    """The bucket of a call of ``ns`` nanoseconds, as the kernel computes it."""
    return min(max(ns, 0).bit_length(), BUCKETS - 1)


def percentile_ns(buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram, interpolated inside its bucket
    on a log scale; None when it is empty. The last bucket reports its lower
    bound."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for b, n in enumerate(buckets):
        if n <= 0:
            continue
        if seen + n >= rank:
            lo = 0.0 if b == 0 else float(1 << (b - 1))
            if b == 0:
                return 0.0
            if b >= BUCKETS - 1:
                return lo
            frac = (rank - seen) / n
            return lo * math.pow(2.0, frac)
        seen += n
    return float(1 << (len(buckets) - 2))


@cache
def errno_label(err: int) -> str:
    """``OK`` for 0, else the errno's name (``ENOENT``) or ``E<n>``."""
    if err == 0:
        return "OK"
    return _native.errno_name(err) or f"E{err}"


@cache
def syscall_labels(nr: int) -> tuple[str, str, str]:
    """(name, class, group) of syscall ``nr``; ``nr<N>`` for an unknown one."""
    try:
        s = syscalls.lookup(nr)
    except ValueError:
        return (f"nr{nr}", "", "")
    return (s.name, s.klass, s.group)


@dataclass(frozen=True, slots=True)
class MetricsRow:
    """One series: calls of syscall ``nr`` in pid namespace ``pid_ns`` that
    ended with ``errno`` (0 = success)."""

    pid_ns: int
    nr: int
    errno: int
    count: int
    total_ns: int
    buckets: tuple[int, ...]

    @property
    def syscall(self) -> str:
        return syscall_labels(self.nr)[0]

    @property
    def klass(self) -> str:
        return syscall_labels(self.nr)[1]

    @property
    def group(self) -> str:
        return syscall_labels(self.nr)[2]

    @property
    def error(self) -> str:
        """``OK`` or the errno's name."""
        return errno_label(self.errno)

    def percentile_ns(self, q: float) -> float | None:
        return percentile_ns(self.buckets, q)


@dataclass(frozen=True, slots=True)
class Overflow:
    """Calls that found the bounded map full, all series together (counted,
    never lost): their number, total time and histogram."""

    count: int
    total_ns: int
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    rows: tuple[MetricsRow, ...]
    overflow: Overflow
    nomem: int
    """Syscall entries not timed: the kernel could not create a task slot."""
    max_entries: int
    taken_at: float
    """``time.time()`` when read."""
    read_seconds: float
    """How long reading the maps took."""
    latency: bool = True
    """Whether calls were timed (False: total_ns and buckets stay 0)."""
    untimed: int = 0
    """Calls counted without a duration (latency on; their entry was not
    stamped: in flight when the hooks were attached, or no task slot). A
    row's histogram holds its timed calls: ``sum(buckets) <= count``."""

    @property
    def entries(self) -> int:
        """Series in the kernel map."""
        return len(self.rows)

    @property
    def calls(self) -> int:
        """Every call counted, the overflow included."""
        return sum(r.count for r in self.rows) + self.overflow.count

    def __iter__(self) -> Iterator[MetricsRow]:
        return iter(self.rows)


def _u64s(raw: bytes) -> memoryview:
    return memoryview(raw).cast("Q")


class Metrics:
    """The kernel syscall metrics program.

    ``mode="node"`` counts every syscall of every pid namespace;
    ``mode="containers"`` only those of namespaces added with
    :meth:`add_namespace`. ``latency=False`` counts calls and errnos only
    (one hook per syscall: the cheap mode); ``True`` also times every call
    (total time and histogram). ``max_entries`` bounds the series the kernel
    keeps; calls of series past it go to :attr:`MetricsSnapshot.overflow`.
    The calling process is never counted. Loading needs root (or CAP_BPF +
    CAP_PERFMON): PermissionError, :class:`~syshub.errors.ProbeError`,
    ValueError for bad arguments. :meth:`close` (or ``with``) detaches and
    unloads: metrics off cost nothing."""

    def __init__(
        self,
        mode: Mode = "node",
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        self_tgid: int | None = None,
        latency: bool = True,
    ) -> None:
        if mode not in ("node", "containers"):
            raise ValueError(f'metrics mode must be "node" or "containers", got {mode!r}')
        self._p = _native.MetricsProbe(
            mode, max_entries=max_entries, self_tgid=self_tgid, latency=bool(latency)
        )
        self.mode: Mode = mode

    @property
    def latency(self) -> bool:
        """Whether calls are timed (histogram and total time filled)."""
        return self._p.latency

    @property
    def max_entries(self) -> int:
        return self._p.max_entries

    @property
    def attached(self) -> bool:
        return self._p.attached

    @property
    def closed(self) -> bool:
        return self._p.closed

    def attach(self) -> None:
        """Attach the hooks again after :meth:`detach` (idempotent)."""
        self._p.attach()

    def detach(self) -> None:
        """Detach the hooks, keeping the counts (idempotent)."""
        self._p.detach()

    def add_namespace(self, pid_ns: int) -> bool:
        """Count pid namespace ``pid_ns`` (containers mode); False if it was."""
        return self._p.add_namespace(pid_ns)

    def remove_namespace(self, pid_ns: int) -> bool:
        """Stop counting ``pid_ns``; False if it was not counted. Its series stay
        until :meth:`prune_namespace`."""
        return self._p.remove_namespace(pid_ns)

    def namespaces(self) -> list[int]:
        return self._p.namespaces()

    def prune_namespace(self, pid_ns: int) -> int:
        """Delete every series of ``pid_ns``; returns how many."""
        return self._p.prune_namespace(pid_ns)

    def remove_series(self, keys: Iterable[tuple[int, int, int]]) -> int:
        """Delete the series of ``keys`` ((pid_ns, nr, errno) each); returns how
        many existed."""
        return self._p.remove_series(list(keys))

    def snapshot(self) -> MetricsSnapshot:
        """Every series now, CPUs summed."""
        t0 = time.perf_counter()
        taken = time.time()
        raw_rows, raw_hist, (ocount, ototal, ohist), nomem, untimed = self._p.snapshot()
        hist = _u64s(raw_hist)
        rows = tuple(
            MetricsRow(ns, nr, err, count, total, tuple(hist[i * BUCKETS : (i + 1) * BUCKETS]))
            for i, (ns, nr, err, count, total) in enumerate(raw_rows)
        )
        overflow = Overflow(ocount, ototal, tuple(_u64s(ohist)))
        return MetricsSnapshot(
            rows,
            overflow,
            nomem,
            self.max_entries,
            taken,
            time.perf_counter() - t0,
            latency=self._p.latency,
            untimed=untimed,
        )

    def close(self) -> None:
        """Detach and unload (idempotent)."""
        self._p.close()

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class RingUse:
    """One BPF ring buffer of this process (the trace probe's event ring):
    bytes the kernel wrote and the reader has not consumed yet, of
    ``capacity``."""

    map_id: int
    pending: int
    capacity: int

    @property
    def fraction(self) -> float:
        return self.pending / self.capacity if self.capacity else 0.0


def ring_use() -> list[RingUse]:
    """The fill of every BPF ring buffer this process holds (empty without a
    trace probe), read without disturbing the reader. OSError when they
    cannot be read."""
    return [RingUse(i, p, c) for i, p, c in _native.ring_use()]


class BareHooks:
    """An empty raw sys_enter + sys_exit program pair, attached while open: the
    cost baseline the benchmarks compare the metrics program to."""

    def __init__(self) -> None:
        self._p = _native.MetricsProbe("bare")

    def close(self) -> None:
        self._p.close()

    def __enter__(self) -> BareHooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
