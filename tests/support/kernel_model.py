"""An in-memory kernel for unit tests of the Hub (no privileges).

:class:`KernelModel` is a :class:`~syshub.hub.kernel.KernelFilters`: it holds
the filters the hub installs (with their full :class:`KeyConfig`), numbers the
calls of each live key like the kernel does (the sequence restarts when a key
is removed and added again), hands out process scopes, and counts the
operations it received. It is strict: removing a filter or a scope that is not
there is a hub bug and raises. :meth:`KernelModel.calls` plays calls on a key
and returns the records the kernel would emit for them (one in ``rate``)."""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from syshub import syscalls
from syshub.errors import ProbeError
from syshub.hub.plan import KernelOp, Key, KeyConfig, SetFilter
from syshub.probe import KernelCounters, KeyStats, KeyTotals, ProbeStats, ReaderCounters

SCOPE_MAX = 65535
"""Scope ids are 1..SCOPE_MAX, like the kernel's (never a pid namespace inode)."""


def _pid_exists(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


@dataclass(frozen=True, slots=True)
class FakeEvent:
    """What the hub reads from a kernel record. ``key_ns`` is the key it
    matched (0 for every namespace, a scope id), ``pid_ns`` the caller's."""

    pid_ns: int
    nr: int
    seq: int
    syscall: str
    key_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {"syscall": self.syscall, "pid_ns": self.pid_ns, "seq": self.seq}

    def to_text(self) -> str:
        return f"{self.syscall}() #{self.seq}"


def fake_events(
    pid_ns: int, name: str, seqs: Iterable[int], *, key_ns: int | None = None
) -> list[FakeEvent]:
    """Records of ``name`` calls in ``pid_ns`` with the given sequence numbers."""
    nr = syscalls.lookup(name).nr
    key = pid_ns if key_ns is None else key_ns
    return [FakeEvent(pid_ns, nr, s, syscalls.lookup(nr).name, key) for s in seqs]


@dataclass
class KernelModel:
    """In-memory :class:`~syshub.hub.kernel.KernelFilters`."""

    pid_exists: Callable[[int], bool] = _pid_exists
    capacity: int | None = None
    """How many filters fit (the kernel's map size); one more is a ProbeError."""
    filters: dict[Key, KeyConfig] = field(default_factory=dict)
    seqs: dict[Key, int] = field(default_factory=dict)
    scopes: dict[int, int] = field(default_factory=dict)
    """scope id -> the pid it was made for."""
    matched: dict[Key, int] = field(default_factory=dict)
    sampled_out: dict[Key, int] = field(default_factory=dict)
    """Per key counters since the key was first set (they survive its removal)."""
    before_apply: Callable[[KernelOp], None] | None = None
    """Called with each operation just before it takes effect (calls racing
    with the hub's update can be played from here)."""
    log: list[KernelOp] = field(default_factory=list)
    scope_log: list[tuple[str, int]] = field(default_factory=list)
    _next_scope: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # KernelFilters ---------------------------------------------------------
    def apply(self, op: KernelOp) -> None:
        if self.before_apply is not None:
            self.before_apply(op)
        with self._lock:
            if isinstance(op, SetFilter):
                if (
                    op.key not in self.filters
                    and self.capacity is not None
                    and len(self.filters) >= self.capacity
                ):
                    raise ProbeError(f"inserting filter {op.key}: no space left in the map")
                self.log.append(op)
                self.filters[op.key] = op.config
                self.seqs.setdefault(op.key, 0)  # an update keeps the sequence
            else:
                if op.key not in self.filters:
                    raise AssertionError(f"hub removed a filter it never set: {op.key}")
                self.log.append(op)
                del self.filters[op.key]
                del self.seqs[op.key]

    def current(self) -> dict[Key, int]:
        with self._lock:
            return {k: c.sample_rate for k, c in self.filters.items()}

    def sequences(self) -> dict[Key, int]:
        with self._lock:
            return dict(self.seqs)

    def add_scope(self, pid: int) -> int:
        with self._lock:
            if not self.pid_exists(pid):
                raise ProcessLookupError(f"no such process: {pid}")
            scope = self._next_scope
            if scope > SCOPE_MAX:
                raise OSError("scope map full")
            self._next_scope += 1
            self.scopes[scope] = pid
            self.scope_log.append(("add", scope))
            return scope

    def remove_scope(self, scope: int) -> None:
        with self._lock:
            if scope not in self.scopes:
                raise AssertionError(f"hub removed a scope it never added: {scope}")
            del self.scopes[scope]
            self.scope_log.append(("remove", scope))

    # the model's own ---------------------------------------------------------
    @property
    def ops(self) -> int:
        """Filter operations received so far."""
        return len(self.log)

    def configs(self) -> dict[Key, KeyConfig]:
        with self._lock:
            return dict(self.filters)

    def match(self, pid_ns: int, nr: int, scope: int = 0) -> Key | None:
        """The one key a call matches, as the kernel picks it: the caller's
        process scope, else its pid namespace, else every namespace (0)."""
        candidates = ([(scope, nr)] if scope else []) + [(pid_ns, nr), (0, nr)]
        with self._lock:
            return next((k for k in candidates if k in self.filters), None)

    def calls_in(self, pid_ns: int, name: str, n: int, *, scope: int = 0) -> list[FakeEvent]:
        """``n`` calls of ``name`` by a process of ``pid_ns`` (in ``scope``):
        the records the kernel emits for them, on whichever key they match."""
        key = self.match(pid_ns, syscalls.lookup(name).nr, scope)
        return [] if key is None else self.calls(key, n, pid_ns=pid_ns)

    def calls(self, key: Key, n: int, *, pid_ns: int | None = None) -> list[FakeEvent]:
        """``n`` calls matching ``key`` (by a caller in ``pid_ns``, default the
        key's namespace): the records the kernel emits for them, those whose
        sequence is a multiple of the filter's rate; none without a filter."""
        with self._lock:
            cfg = self.filters.get(key)
            if cfg is None:
                return []
            first = self.seqs[key] + 1
            self.seqs[key] += n
            last = self.seqs[key]
            ns = key[0] if pid_ns is None else pid_ns
            name = syscalls.lookup(key[1]).name
            out = [
                FakeEvent(ns, key[1], s, name, key[0])
                for s in range(first, last + 1)
                if s % cfg.sample_rate == 0
            ]
            self.matched[key] = self.matched.get(key, 0) + n
            self.sampled_out[key] = self.sampled_out.get(key, 0) + n - len(out)
            return out


class ProbeModel:
    """The reading side of the kernel: a ring the hub's reader loop polls,
    with the probe's per-key counters (so ``Hub.flush`` works as on the real
    probe). :meth:`hold` stops polls from taking anything until
    :meth:`release`: records then wait in the ring like a lagging reader's."""

    def __init__(self, kernel: KernelModel) -> None:
        self.kernel = kernel
        self._ring: collections.deque[FakeEvent] = collections.deque()
        self._cv = threading.Condition()
        self._held = False
        self._closed = False
        self.delivered: dict[Key, int] = {}
        self.dropped: dict[Key, int] = {}

    def play(self, key: Key, n: int, *, lose: Iterable[int] = ()) -> list[FakeEvent]:
        """``n`` calls on ``key``; their records go into the ring except those
        whose sequence is in ``lose`` (counted dropped, as with a full ring)."""
        lost = set(lose)
        evs = self.kernel.calls(key, n)
        kept = [e for e in evs if e.seq not in lost]
        with self._cv:
            self.dropped[key] = self.dropped.get(key, 0) + len(evs) - len(kept)
            self._ring.extend(kept)
            self._cv.notify_all()
        return kept

    def hold(self) -> None:
        with self._cv:
            self._held = True

    def release(self) -> None:
        with self._cv:
            self._held = False
            self._cv.notify_all()

    def queued(self) -> int:
        with self._cv:
            return len(self._ring)

    # the probe surface the hub uses ------------------------------------------
    def poll(self, max_events: int = 8192, timeout_ms: int = 1000) -> list[FakeEvent]:
        with self._cv:
            self._cv.wait_for(
                lambda: self._closed or (self._ring and not self._held), timeout_ms / 1000
            )
            if self._closed or self._held:
                return []
            out = [self._ring.popleft() for _ in range(min(max_events, len(self._ring)))]
            for e in out:
                k = (e.key_ns, e.nr)
                self.delivered[k] = self.delivered.get(k, 0) + 1
            return out

    def stats(self) -> ProbeStats:
        with self._cv:
            keys = []
            for key, matched in sorted(self.kernel.matched.items()):
                sampled_out = self.kernel.sampled_out.get(key, 0)
                dropped = self.dropped.get(key, 0)
                delivered = self.delivered.get(key, 0)
                emitted = matched - sampled_out - dropped
                keys.append(
                    KeyStats(
                        key[0],
                        key[1],
                        syscalls.lookup(key[1]).name,
                        matched,
                        sampled_out,
                        dropped,
                        emitted,
                        delivered,
                        pending=emitted - delivered,
                    )
                )
        total = KeyTotals(
            sum(k.matched for k in keys),
            sum(k.sampled_out for k in keys),
            sum(k.dropped for k in keys),
            sum(k.delivered for k in keys),
        )
        kernel = KernelCounters(
            total.matched, total.sampled_out, total.dropped, sum(k.emitted for k in keys), 0, 0, 0
        )
        return ProbeStats(tuple(keys), total, kernel, ReaderCounters(total.delivered, 0, 0, 0))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
