"""Private native module of syshub (Rust, pyo3). This stub is its API reference.

Needs Linux >= 5.17 with BTF, tracefs and root (or CAP_BPF + CAP_PERFMON)."""

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, final

__all__ = [
    "ABI_VERSION",
    "ARGV_MAX_LIMIT",
    "BUF_MAX_LIMIT",
    "METRICS_BUCKETS",
    "METRICS_MAX_ENTRIES_DEFAULT",
    "METRICS_MAX_ENTRIES_MAX",
    "REC_MAX",
    "RING_BYTES_MAX",
    "RING_BYTES_MIN",
    "SAMPLE_RATE_MAX",
    "STR_MAX_LIMIT",
    "Batch",
    "Column",
    "Event",
    "MetricsProbe",
    "Probe",
    "abi_layout",
    "decode_record",
    "decode_records",
    "encode_chunks",
    "encode_json",
    "encode_proto",
    "encode_text",
    "errno_name",
    "lookup_syscall",
    "probe_object",
    "returns_pointer",
    "ring_use",
    "syscall_table_tsv",
    "unpack_records",
    "write_chunks",
]

ABI_VERSION: int
REC_MAX: int
STR_MAX_LIMIT: int
"""Largest ``str_max`` (bytes captured per string argument): 4096."""
ARGV_MAX_LIMIT: int
"""Largest ``argv_max`` (argv/envp entries captured): 128."""
BUF_MAX_LIMIT: int
"""Largest ``buf_max`` (bytes captured per buffer argument): 4096."""
SAMPLE_RATE_MAX: int
"""Largest ``sample_rate`` (1 in N): 2**32 - 1."""
RING_BYTES_MIN: int
"""Smallest ring buffer: 4096 bytes."""
RING_BYTES_MAX: int
"""Largest ring buffer: 1 GiB."""

@final
class Probe:
    """The kernel probe. Thread-safe; ``close()`` is idempotent.

    Raises ``PermissionError`` (naming CAP_BPF/CAP_PERFMON or root) without
    privileges, :class:`syshub.errors.ProbeError` when tracefs is missing and
    cannot be mounted or the kernel refuses the probe. ``ValueError`` (naming
    the argument and its range) for ``ring_bytes`` that is not a power of two
    in ``RING_BYTES_MIN..=RING_BYTES_MAX``, ``poll_ms`` outside 1..=1000, or a
    negative ``wakeup_bytes``/``self_tgid``; never ``OverflowError``.

    ``tracepoint_syscalls`` (default 3, 0..=512): how many syscalls may use
    their own tracepoints (other syscalls pay nothing for them, but each costs
    ~0.1 s to detach); tracing more moves them all to the raw hooks (cheap to
    detach, ~+45 ns on every syscall of the host).

    ``fair_share_pct`` (default 50, 0..=100): past this fill of the ring, a
    key may keep at most as many bytes pending as are free; the excess is
    dropped and counted as ``over_share`` (also in ``dropped``). 100: off.
    """

    def __new__(
        cls,
        ring_bytes: int = 16777216,
        *,
        wakeup_bytes: int | None = None,
        poll_ms: int = 10,
        self_tgid: int | None = None,
        tracepoint_syscalls: int | None = None,
        fair_share_pct: int = 50,
    ) -> Probe: ...
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
        """Trace ``syscall`` in pid namespace ``pid_ns`` (0 = every namespace),
        delivering 1 in ``sample_rate`` calls; re-adding a key updates it.
        Unknown names raise :class:`syshub.errors.SyscallNameError` (a
        ``ValueError``) suggesting close matches. Out-of-range values raise
        ``ValueError`` naming the argument and its range: ``sample_rate`` in
        0..=SAMPLE_RATE_MAX (0 and 1 deliver every call), ``str_max`` in
        1..=STR_MAX_LIMIT, ``argv_max`` in 0..=ARGV_MAX_LIMIT, ``buf_max`` in
        0..=BUF_MAX_LIMIT, ``pid_ns`` in 0..=2**32-1."""
    def remove_filter(self, pid_ns: int, syscall: str | int) -> bool:
        """Stop tracing a key; False if it was not traced."""
    def filters(self) -> list[dict[str, Any]]:
        """Keys read back from the kernel map: pid_ns, nr, syscall, sample_rate,
        str_max, argv_max, buf_max."""
    def sequences(self) -> dict[tuple[int, int], int]:
        """Live keys' current sequence numbers (matched calls since the key
        was added; restarts when a key is removed and added again)."""
    def hooked(self) -> list[tuple[int, bool]]:
        """Syscall numbers with hooks attached: (nr, through the raw hooks)."""
    def entry_hooked(self) -> list[int]:
        """Syscall numbers whose entry hook runs; the others are recorded at exit only."""
    def add_scope(self, pid: int) -> int:
        """Put process ``pid`` (a host pid) and its descendants, alive now or
        forked later, in a new scope; returns its id (1..65535), used as the
        ``pid_ns`` of :meth:`add_filter`. ValueError for no such process, a
        thread id, the tracer itself or a process already in a scope."""
    def remove_scope(self, scope: int) -> bool:
        """End a scope: its processes leave it and its filters are removed;
        the fork/exit hooks go with the last scope. False if it did not exist."""
    def scopes(self) -> list[tuple[int, int]]:
        """Live scopes: (scope id, root pid)."""
    def scope_pids(self, scope: int) -> list[int]:
        """Host pids in scope ``scope`` now (dead processes leave it)."""
    def scope_hooked(self) -> bool:
        """Whether the fork/exit hooks that follow scoped processes are attached."""
    def poll(self, max_events: int = 8192, timeout_ms: int = 1000) -> Batch:
        """Wait up to ``timeout_ms`` (negative: forever) for at most
        ``max_events`` events (the rest of a reader batch is kept, in order,
        for the next poll). The GIL is
        released while waiting; Ctrl-C raises KeyboardInterrupt; ``close()``
        from another thread makes it return an empty batch. Raises
        :class:`syshub.errors.ProbeError` on a closed probe, ``ValueError``
        for ``max_events`` outside 1..=2**32-1."""
    def stats(self) -> dict[str, Any]:
        """The reader first empties the ring (waiting up to 1 s, GIL
        released), so ``emitted`` counts every record the kernel wrote before
        the call. ``keys``: per key matched, sampled_out, dropped (in the kernel;
        of it over_share: over the key's fair share of the ring),
        emitted (read out of the ring), delivered (returned by poll), pending
        (matched, not yet delivered nor dropped/sampled out); ``total``;
        ``kernel``: global counters (matched, sampled_out, dropped, emitted,
        orphaned, nomem, nokey, over_share); ``reader``: records,
        decode_errors, batches, wakeups. Once drained, per key
        matched == delivered + dropped + sampled_out."""
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Probe: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class Batch:
    """Events of one poll. Iterate for :class:`Event` objects, or take header
    columns without creating Python objects per event."""

    column_names: list[str]
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __getitem__(self, key: int, /) -> Event: ...
    def __iter__(self) -> Iterator[Event]: ...
    def column(self, name: str) -> Column:
        """A header field of every event as a typed read-only buffer (``nr``,
        ``tgid``, ``tid``, ``ns_tgid``, ``ns_tid``, ``uid``, ``gid``,
        ``pid_ns``, ``key_ns``, ``mnt_ns``, ``uts_ns`` as uint32; ``flags`` uint16;
        ``cgroup_id``, ``enter_ns``, ``exit_ns``, ``seq`` uint64; ``ret`` int64).
        ``numpy.asarray(col)`` and ``memoryview(col)`` share its memory."""
    def raw(self, i: int) -> bytes: ...
    @staticmethod
    def from_records(records: Sequence[bytes]) -> Batch:
        """A batch of raw records (recorded with :meth:`raw`, or built by
        hand); ``ValueError`` naming the first malformed one."""
    def take(self, ranges: Sequence[tuple[int, int]]) -> Batch:
        """A new batch of copies of the events of ``ranges``."""
    def runs(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """Runs of consecutive events with the same filter key and pid
        namespace: ``(key_ns, nr, pid_ns, start, end, min_seq, max_seq)``."""
    def select(
        self, start: int, end: int, base: int, rate: int, last: int
    ) -> list[tuple[int, int]]:
        """Index ranges of events ``start..end`` whose ``seq`` is above
        ``base``, a multiple of ``rate`` and at most ``last``, merged."""

@final
class Column:
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class Event:
    """One syscall, immutable. ``tgid`` is the process id and ``tid`` the
    thread id as the host sees them; ``ns_tgid``/``ns_tid`` inside the task's
    pid namespace."""

    @property
    def nr(self) -> int: ...
    @property
    def syscall(self) -> str: ...
    @property
    def tgid(self) -> int: ...
    @property
    def tid(self) -> int: ...
    @property
    def ns_tgid(self) -> int: ...
    @property
    def ns_tid(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def sid(self) -> int: ...
    @property
    def comm(self) -> str: ...
    @property
    def pid_ns(self) -> int: ...
    @property
    def key_ns(self) -> int:
        """Namespace field of the filter key the event matched: 0 for the
        every-namespace key, the scope id for a scope's key, else pid_ns."""
    @property
    def mnt_ns(self) -> int: ...
    @property
    def uts_ns(self) -> int: ...
    @property
    def cgroup_id(self) -> int: ...
    @property
    def enter_ns(self) -> int: ...
    @property
    def exit_ns(self) -> int: ...
    @property
    def ret(self) -> int:
        """64-bit signed return value."""
    @property
    def seq(self) -> int:
        """Per filter key sequence number (1-based) of this call."""
    @property
    def flags(self) -> int: ...
    @property
    def no_exit(self) -> bool:
        """exit/exit_group: never returns, no ``ret``."""
    @property
    def exit_only(self) -> bool:
        """Recorded at exit only (no durations asked and none needed): ``enter_ns`` is 0."""
    @property
    def truncated(self) -> bool: ...
    @property
    def returned(self) -> bool:
        """Whether the call returned to the program (False for exit,
        exit_group and calls that did not come back)."""
    @property
    def errno(self) -> int | None:
        """Positive errno when the call failed; None on success or when the
        call did not return."""
    @property
    def error(self) -> str:
        """``ENOENT``-style name, ``OK`` on success, ``?`` when the call did
        not return."""
    @property
    def raw_args(self) -> tuple[int, int, int, int, int, int]: ...
    @property
    def args(self) -> dict[str, Any]:
        """Decoded arguments by name: str for paths and symbolic flags, list
        of str for argv, dict for socket addresses and buffers, int otherwise."""
    @property
    def truncated_args(self) -> list[str]: ...
    @property
    def latency_ns(self) -> int: ...
    def to_text(self) -> str:
        """``comm[pid] openat(AT_FDCWD, "/x", O_RDONLY) = 3 <0.000012>``."""
    def to_dict(self) -> dict[str, Any]:
        """The event document (JSON-ready; the CLI, subscribers and the agent
        emit it as is). Keys: ``syscall`` ({nr, name ``sys_*``, class,
        group}), ``pid`` and ``tgid`` (process id, host view), ``tid``,
        ``container_pid`` and ``ns_pid`` (process id in its pid namespace),
        ``container_tid``, ``uid``, ``gid``, ``comm``, ``session``,
        ``error`` (``ENOENT``-style name or ``OK``), ``errno`` (positive int
        or None), ``return``, ``returned`` (False for calls that did not
        return: then ``error``, ``errno`` and ``return`` are None), ``pid_ns``,
        ``uts_ns``, ``mount_ns``, ``cgroup_id``, ``start``, ``finish``
        (monotonic ns), ``seq``, ``args`` (as :attr:`args`) and, when some
        capture was cut short, ``truncated`` (argument names)."""
    def raw(self) -> bytes: ...

def decode_record(rec: bytes) -> Event:
    """Decode one raw record; ``ValueError`` if malformed."""

# encoders (H-enc): many events at once, no Python object per event ----------
def encode_json(
    batch: Batch,
    ranges: Sequence[tuple[int, int]] | None = None,
    containers: dict[int, Mapping[str, Any] | None] | None = None,
    *,
    node: str | None = None,
) -> bytes:
    """One JSON line per event of ``ranges`` (index ranges; None: all),
    byte-identical to ``json.dumps(doc, separators=(",", ":"))`` of the event
    document with ``"container"`` from ``containers`` (pid_ns -> document;
    absent: null) and ``"node"`` last when given. ``ValueError`` for a range
    outside the batch, ``TypeError`` for a container value that is not
    JSON-like."""

def encode_text(batch: Batch, ranges: Sequence[tuple[int, int]] | None = None) -> bytes:
    """One ``to_text()`` line per event, each ending in ``\n``."""

def encode_proto(
    batch: Batch,
    ranges: Sequence[tuple[int, int]] | None = None,
    containers: dict[int, Mapping[str, Any] | None] | None = None,
    *,
    node: str = "",
) -> bytes:
    """A serialized ``syshub.v1.EventBatch`` (proto/syshub/v1/event.proto)."""

_Chunk = tuple[Batch, Sequence[tuple[int, int]] | None, dict[int, Mapping[str, Any] | None] | None]

def encode_chunks(
    format: str,
    chunks: Sequence[_Chunk],
    *,
    node: str | None = None,
    field: int = 0,
    prefix: bytes | None = None,
) -> bytes:
    """Several chunks as one output (json, text, proto or records), after
    ``prefix`` and framed as field ``field`` when > 0."""

def write_chunks(fd: int, format: str, chunks: Sequence[_Chunk], *, node: str | None = None) -> int:
    """Several chunks encoded (json or text) and written to ``fd``; bytes written."""

def decode_records(data: bytes) -> Batch:
    """The batch of a records-form EventBatch's ``records`` field."""

def unpack_records(data: bytes) -> Batch:
    """The batch of a records-form EventBatch's ``packed_records`` field."""

def syscall_table_tsv() -> str: ...
def lookup_syscall(syscall: str | int) -> tuple[int, str, str, str]: ...
def errno_name(n: int) -> str | None: ...
def returns_pointer(nr: int) -> bool: ...
def abi_layout() -> dict[str, dict[str, tuple[int, int]]]:
    """Size/offset of every field of the Rust ABI mirror: {struct: {field: (offset, size)}},
    with the struct's total size under the key ``"__size__"``."""

def probe_object() -> bytes:
    """The embedded compiled eBPF object."""

# syscall metrics (H-metrics): the kernel metrics program ----------------------
METRICS_BUCKETS: int
"""Latency buckets per series (bucket b: ns with b significant bits)."""
METRICS_MAX_ENTRIES_DEFAULT: int
METRICS_MAX_ENTRIES_MAX: int

def ring_use() -> list[tuple[int, int, int]]:
    """Fill of every BPF ring buffer this process holds (the trace probe's
    event ring): ``[(map_id, pending_bytes, capacity_bytes)]``; empty without
    a probe. ``OSError`` when the rings cannot be read."""

@final
class MetricsProbe:
    """The syscall metrics program: per (pid namespace, syscall, errno) calls,
    and with ``latency`` total ns and a log2 latency histogram (tp_btf
    sys_exit counts; latency adds sys_enter). ``mode``: ``"node"`` (every
    namespace), ``"containers"`` (the namespace set) or ``"bare"`` (an empty
    raw hook pair: a benchmark baseline). ``attach``: attach the hooks at
    once. ``PermissionError`` / ``ProbeError`` / ``ValueError`` as
    :class:`Probe`."""

    def __new__(
        cls,
        mode: str = "node",
        *,
        max_entries: int = 16384,
        self_tgid: int | None = None,
        attach: bool = True,
        latency: bool = True,
    ) -> MetricsProbe: ...
    @property
    def mode(self) -> str: ...
    @property
    def max_entries(self) -> int: ...
    @property
    def latency(self) -> bool: ...
    @property
    def attached(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def attach(self) -> None: ...
    def detach(self) -> None: ...
    def add_namespace(self, pid_ns: int) -> bool: ...
    def remove_namespace(self, pid_ns: int) -> bool: ...
    def namespaces(self) -> list[int]: ...
    def prune_namespace(self, pid_ns: int) -> int: ...
    def remove_series(self, keys: list[tuple[int, int, int]]) -> int: ...
    def snapshot(
        self,
    ) -> tuple[list[tuple[int, int, int, int, int]], bytes, tuple[int, int, bytes], int, int]:
        """``(rows, hist, overflow, nomem, untimed)``: rows of (pid_ns, nr,
        errno, count, total_ns); hist: ``len(rows) * METRICS_BUCKETS`` native
        u64 (row-major); overflow: (count, total_ns, buckets as u64 bytes);
        untimed: calls counted without a duration."""
    def close(self) -> None: ...
    def __enter__(self) -> MetricsProbe: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...
