"""The kernel probe, public and typed: the one door to ``syshub._native``.

:class:`Probe` loads the eBPF program, installs filters keyed by (pid
namespace or process scope, syscall) and hands out batches of decoded
events. Its counters come back as frozen values (:class:`ProbeStats`), in
which, once drained, every key satisfies
``matched == delivered + dropped + sampled_out``.

Most users want the :class:`~syshub.Hub`, which owns a probe and keeps its
filters equal to what the running traces need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syshub import _native

Event = _native.Event
"""One decoded syscall (immutable)."""
Batch = _native.Batch
"""The events of one poll, iterable, with typed header columns."""
Column = _native.Column

ABI_VERSION: int = _native.ABI_VERSION


@dataclass(frozen=True, slots=True)
class FilterInfo:
    """One kernel filter as read back from the kernel map."""

    pid_ns: int
    """Pid namespace inode, 0 for every namespace, or a process scope id."""
    nr: int
    syscall: str
    sample_rate: int
    str_max: int
    argv_max: int
    buf_max: int


@dataclass(frozen=True, slots=True)
class KeyStats:
    """Counters of one filter key. ``emitted``: records read out of the ring;
    ``pending``: matched calls not yet delivered nor dropped or sampled out
    (still running, in the ring, or queued for poll). ``dropped`` counts every
    loss in the kernel; ``over_share`` the part of it dropped because the key
    held more than its fair share of the ring (see :class:`Probe`).

    A key removed and added again (a pid namespace inode reused by a new
    container) starts a new lifetime from 0: ``lifetime`` is its number
    (1 the first) on the key's latest entry, and 0 on a second entry, listed
    after it, that sums what the key's earlier lifetimes counted. Each entry
    balances on its own; :attr:`ProbeStats.total` holds them all."""

    pid_ns: int
    nr: int
    syscall: str
    matched: int
    sampled_out: int
    dropped: int
    emitted: int
    delivered: int
    pending: int
    over_share: int = 0
    lifetime: int = 1


@dataclass(frozen=True, slots=True)
class KeyTotals:
    """The sum of :class:`KeyStats` over every key."""

    matched: int
    sampled_out: int
    dropped: int
    delivered: int
    over_share: int = 0


@dataclass(frozen=True, slots=True)
class KernelCounters:
    """Global kernel counters; ``orphaned``: calls whose exit hook went away,
    ``nomem``: no per-task storage (also in ``dropped``), ``nokey``: counters
    missing for a matched key, ``over_share``: dropped over a key's fair share
    (also in ``dropped``)."""

    matched: int
    sampled_out: int
    dropped: int
    emitted: int
    orphaned: int
    nomem: int
    nokey: int
    over_share: int = 0


@dataclass(frozen=True, slots=True)
class ReaderCounters:
    """The ring reader thread: records read, malformed records skipped,
    batches handed over, wake-ups."""

    records: int
    decode_errors: int
    batches: int
    wakeups: int


@dataclass(frozen=True, slots=True)
class ProbeStats:
    keys: tuple[KeyStats, ...]
    total: KeyTotals
    kernel: KernelCounters
    reader: ReaderCounters

    def key(self, pid_ns: int, nr: int) -> KeyStats | None:
        """The counters of one key's latest lifetime, None if the probe has
        never had it."""
        return next((k for k in self.keys if k.pid_ns == pid_ns and k.nr == nr), None)

    @property
    def drained(self) -> bool:
        """Every record read out of the ring has been delivered by ``poll``."""
        return all(k.delivered >= k.emitted for k in self.keys)


def _fields(cls: type[Any], d: Mapping[str, Any]) -> Any:
    return cls(**{f: d[f] for f in cls.__slots__})


def _probe_stats(d: Mapping[str, Any]) -> ProbeStats:
    keys = tuple(
        _fields(KeyStats, {**k, "syscall": k.get("syscall") or str(k["nr"])}) for k in d["keys"]
    )
    return ProbeStats(
        keys=keys,
        total=_fields(KeyTotals, d["total"]),
        kernel=_fields(KernelCounters, d["kernel"]),
        reader=_fields(ReaderCounters, d["reader"]),
    )


class Probe:
    """The kernel probe. Thread-safe; ``close()`` is idempotent.

    Raises ``PermissionError`` (naming CAP_BPF/CAP_PERFMON or root) without
    privileges, :class:`~syshub.errors.ProbeError` when tracefs is missing and
    cannot be mounted or the kernel refuses the probe, ``ValueError`` for a
    ring size that is not a power of two in range.

    ``tracepoint_syscalls`` (default 3): how many syscalls may be hooked
    through their own tracepoints, which cost other syscalls nothing but take
    ~0.1 s each to detach; tracing more moves them all to the raw hooks (fast
    to detach, ~+45 ns on every syscall of the host). A short-lived tracer
    (the CLI) keeps it low to leave fast; a long-lived one (a node agent)
    raises it so the node stays fast.

    ``fair_share_pct`` (default 50, 0..=100): once the ring is more than this
    percent full, a key may keep at most as many bytes pending in it as are
    still free (one flooding key then holds about half of the ring, N of them
    1/(N+1) each), so a flood cannot make another key's records drop; what
    exceeds the share is dropped and counted in the key's ``dropped`` and
    ``over_share``. 100 turns it off."""

    def __init__(
        self,
        ring_bytes: int = 16 << 20,
        *,
        wakeup_bytes: int | None = None,
        poll_ms: int = 10,
        tracepoint_syscalls: int | None = None,
        fair_share_pct: int = 50,
    ) -> None:
        self._native = _native.Probe(
            ring_bytes,
            wakeup_bytes=wakeup_bytes,
            poll_ms=poll_ms,
            tracepoint_syscalls=tracepoint_syscalls,
            fair_share_pct=fair_share_pct,
        )

    # filters -------------------------------------------------------------
    def add_filter(
        self,
        pid_ns: int,
        syscall: str | int,
        sample_rate: int = 1,
        *,
        str_max: int = 256,
        argv_max: int = 32,
        buf_max: int = 64,
        durations: bool = False,
    ) -> None:
        """Trace ``syscall`` in pid namespace ``pid_ns`` (0: every namespace; or
        a scope id from :meth:`add_scope`), delivering 1 in ``sample_rate``
        calls; re-adding a key updates it and keeps its sequence. With
        ``durations`` each call is timed from entry to exit (the syscall's entry
        hook runs too: about twice the cost per call); without, a call carries
        its exit time only (``enter_ns`` 0) unless the syscall needs its entry
        hook anyway (exec, exit, the fork family, in/out structs)."""
        self._native.add_filter(
            pid_ns,
            syscall,
            sample_rate,
            str_max=str_max,
            argv_max=argv_max,
            buf_max=buf_max,
            durations=durations,
        )

    def remove_filter(self, pid_ns: int, syscall: str | int) -> bool:
        """Stop tracing a key; False if it was not traced."""
        return self._native.remove_filter(pid_ns, syscall)

    def filters(self) -> list[FilterInfo]:
        return [_fields(FilterInfo, f) for f in self._native.filters()]

    def sequences(self) -> dict[tuple[int, int], int]:
        """Live keys' current sequence numbers (matched calls since added)."""
        return self._native.sequences()

    def hooked(self) -> list[tuple[int, bool]]:
        """Syscall numbers with hooks attached: (nr, through the raw hooks)."""
        return self._native.hooked()

    def entry_hooked(self) -> list[int]:
        """Syscall numbers whose entry hook runs; the others are recorded at exit only."""
        return self._native.entry_hooked()

    # process scopes --------------------------------------------------------
    def add_scope(self, pid: int) -> int:
        """Key ``pid`` and its descendants by a scope id of their own (use it
        as ``pid_ns`` in :meth:`add_filter`), in whatever namespace they live."""
        return self._native.add_scope(pid)

    def remove_scope(self, scope: int) -> bool:
        """End a scope and remove its filters; False if it did not exist."""
        return self._native.remove_scope(scope)

    def scopes(self) -> list[tuple[int, int]]:
        """Live scopes: (scope id, root pid)."""
        return self._native.scopes()

    def scope_pids(self, scope: int) -> list[int]:
        """Host pids in a scope now (a process leaves it when it dies)."""
        return self._native.scope_pids(scope)

    def scope_hooked(self) -> bool:
        """Whether the fork/exit hooks that follow scoped processes are attached."""
        return self._native.scope_hooked()

    # events and counters -------------------------------------------------
    def poll(self, max_events: int = 8192, timeout_ms: int = 1000) -> Batch:
        """Up to ``max_events`` events, waiting up to ``timeout_ms`` (negative:
        forever) with the GIL released; ``close()`` from another thread ends
        the wait with an empty batch."""
        return self._native.poll(max_events, timeout_ms)

    def stats(self) -> ProbeStats:
        """Counters; the reader first empties the ring (up to 1 s), so every
        record the kernel wrote before the call counts as emitted."""
        return _probe_stats(self._native.stats())

    def close(self) -> None:
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_record(record: bytes) -> Event:
    """Decode one raw ring record; ``ValueError`` if malformed."""
    return _native.decode_record(record)


def probe_object() -> bytes:
    """The compiled eBPF object embedded in the package."""
    return _native.probe_object()


def abi_layout() -> dict[str, dict[str, tuple[int, int]]]:
    """Offset and size of every field of the kernel/user ABI (for ABI checks)."""
    return _native.abi_layout()


Ranges = Sequence[tuple[int, int]]
"""Half-open index ranges ``(start, end)`` of events of a batch, in order."""
Containers = Mapping[int, Mapping[str, Any] | None]
"""Pid namespace inode -> its container's document (``Container.to_dict()``);
a namespace absent or None: ``"container": null``."""


def _containers(c: Containers | None) -> dict[int, Mapping[str, Any] | None] | None:
    return c if c is None or isinstance(c, dict) else dict(c)


def encode_json(
    batch: Batch,
    ranges: Ranges | None = None,
    containers: Containers | None = None,
    *,
    node: str | None = None,
) -> bytes:
    """The events of ``ranges`` (None: the whole batch) as JSON lines, encoded
    in Rust with the GIL released: each line is exactly
    ``json.dumps(ev.to_dict(), separators=(",", ":"))`` of the
    :class:`~syshub.TraceEvent` whose container ``containers`` gives for its
    pid namespace, plus ``"node"`` last when ``node`` is given."""
    return _native.encode_json(batch, ranges, _containers(containers), node=node)


def encode_text(batch: Batch, ranges: Ranges | None = None) -> bytes:
    """The events of ``ranges`` as strace-style lines (``to_text()``), each
    ending in a newline."""
    return _native.encode_text(batch, ranges)


def encode_proto(
    batch: Batch,
    ranges: Ranges | None = None,
    containers: Containers | None = None,
    *,
    node: str = "",
) -> bytes:
    """The events of ``ranges`` as a serialized ``syshub.v1.EventBatch``
    (``proto/syshub/v1/event.proto``). Concatenated results parse as one
    EventBatch with all the events."""
    return _native.encode_proto(batch, ranges, _containers(containers), node=node)


Chunk = tuple[Batch, Ranges | None, Containers | None]
"""A batch, its selected ranges (None: all) and its containers."""


def _chunks(chunks: Sequence[Chunk]) -> list[Any]:
    return [(b, r, _containers(c)) for b, r, c in chunks]


def encode_chunks(
    format: str,
    chunks: Sequence[Chunk],
    *,
    node: str | None = None,
    field: int = 0,
    prefix: bytes | None = None,
) -> bytes:
    """Several chunks encoded in Rust as one output (``format``: json, text,
    proto or records), returned as ``prefix`` + (with ``field`` > 0) the
    output framed as length-delimited field ``field`` of a message."""
    return _native.encode_chunks(format, _chunks(chunks), node=node, field=field, prefix=prefix)


def write_chunks(fd: int, format: str, chunks: Sequence[Chunk], *, node: str | None = None) -> int:
    """Several chunks encoded in Rust (json or text) and written to the file
    descriptor ``fd`` with the GIL released; returns the bytes written."""
    return _native.write_chunks(fd, format, _chunks(chunks), node=node)


def decode_records(data: bytes) -> Batch:
    """The batch held by a records-form ``EventBatch``'s ``records`` field;
    ``ValueError`` naming the first malformed record."""
    return _native.decode_records(data)


def unpack_records(data: bytes) -> Batch:
    """The batch held by a records-form ``EventBatch``'s ``packed_records``
    field (what agents send); ``ValueError`` naming the first malformed record."""
    return _native.unpack_records(data)
