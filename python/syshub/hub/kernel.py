"""The Hub's thin layer over the kernel: filter operations from the plan,
per-key sequences, process scopes, and held pid namespaces.

A pid namespace's inode is reused as soon as the namespace dies, and a
filter on a reused inode would trace someone else: whoever installs a
filter for a namespace holds it open (:class:`NamespaceHold`) until the
filter is gone.

A filter key is ``(pid namespace inode, syscall nr)``, so a key removed with
its dead namespace comes back when the inode goes to a new namespace. The
probe counts a key's calls over all its filters; the Hub reports each filter
(a generation of the key) apart: :func:`generation_stats` lists a re-added
key's current filter from 0, and what its earlier filters counted as a second
entry after it (totals unchanged)."""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Protocol

from syshub.errors import HubError
from syshub.hub.plan import KernelOp, Key, SetFilter
from syshub.probe import KeyStats, Probe, ProbeStats


class KernelFilters(Protocol):
    """What the hub needs from the kernel. :class:`ProbeFilters` is the real
    one; the unit tests use an in-memory model."""

    def apply(self, op: KernelOp) -> None: ...

    def current(self) -> dict[Key, int]:
        """Installed keys -> sample rate, read back."""
        ...

    def sequences(self) -> dict[Key, int]:
        """Live keys' kernel sequence (the number records are stamped with)."""
        ...

    def add_scope(self, pid: int) -> int:
        """A process scope for ``pid`` and its descendants; its id keys filters."""
        ...

    def remove_scope(self, scope: int) -> None: ...


class ProbeFilters:
    """:class:`KernelFilters` on the real probe."""

    def __init__(self, probe: Probe, max_keys: int | None = None) -> None:
        self.probe = probe
        self.max_keys = max_keys
        """Keys installed at most (None: what the kernel's filter map holds)."""
        self._lock = threading.Lock()
        self._live: set[Key] = set()
        self._removed: set[int] = set()
        """Keys (``pid_ns << 32 | nr``) removed and not added again."""
        self._earlier: dict[Key, KeyStats] = {}
        """What the earlier filters of a re-added key counted."""

    def apply(self, op: KernelOp) -> None:
        key = op.key
        packed = key[0] << 32 | key[1]
        if isinstance(op, SetFilter):
            limit = self.max_keys
            if limit is not None and key not in self._live and len(self._live) >= limit:
                raise HubError(
                    f"the node's filter-key limit is reached ({limit} keys, "
                    "setting max_filter_keys)"
                )
            if key not in self._live and packed in self._removed:
                # Read before the filter goes in: the key's counts are its
                # earlier filters' (the probe reads every key: only on re-adds).
                earlier = self.probe.stats().key(*key)
                if earlier is not None:
                    with self._lock:
                        self._earlier[key] = earlier
            c = op.config
            self.probe.add_filter(
                op.key[0],
                op.key[1],
                c.sample_rate,
                str_max=c.str_max,
                argv_max=c.argv_max,
                buf_max=c.buf_max,
                durations=c.durations,
            )
            self._live.add(key)
            self._removed.discard(packed)
        else:
            self.probe.remove_filter(*key)
            self._live.discard(key)
            self._removed.add(packed)

    def stats(self) -> ProbeStats:
        """The probe's counters, a re-added key's filters apart (see the module)."""
        stats = self.probe.stats()
        with self._lock:
            earlier = dict(self._earlier)
        if not earlier:
            return stats
        keys: list[KeyStats] = []
        for k in stats.keys:
            e = earlier.get((k.pid_ns, k.nr))
            keys.extend((k,) if e is None else (_since(k, e), e))
        return dataclasses.replace(stats, keys=tuple(keys))

    def current(self) -> dict[Key, int]:
        return {(f.pid_ns, f.nr): f.sample_rate for f in self.probe.filters()}

    def sequences(self) -> dict[Key, int]:
        return self.probe.sequences()

    def add_scope(self, pid: int) -> int:
        return self.probe.add_scope(pid)

    def remove_scope(self, scope: int) -> None:
        self.probe.remove_scope(scope)


def _since(now: KeyStats, before: KeyStats) -> KeyStats:
    """What a key counted since ``before``."""
    d = {
        f: max(0, getattr(now, f) - getattr(before, f))
        for f in ("matched", "sampled_out", "dropped", "emitted", "delivered", "over_share")
    }
    pending = max(0, d["matched"] - d["sampled_out"] - d["dropped"] - d["delivered"])
    return dataclasses.replace(now, pending=pending, **d)


def generation_stats(filters: KernelFilters | None, probe: Probe) -> ProbeStats:
    """``probe``'s counters, each filter of a re-added key apart when
    ``filters`` are the real ones (:meth:`ProbeFilters.stats`)."""
    if isinstance(filters, ProbeFilters) and filters.probe is probe:
        return filters.stats()
    return probe.stats()


class NamespaceHold:
    """An open pid namespace: its inode cannot be reused while held."""

    def __init__(self, fd: int, inode: int) -> None:
        self.fd: int | None = fd
        self.inode = inode

    @staticmethod
    def of(pid: int, alt_root: str = "/", expect: int | None = None) -> NamespaceHold | None:
        """Hold the pid namespace of ``pid``. None when the process is gone,
        not ours to see, or (with ``expect``) already in another namespace."""
        try:
            fd = os.open(
                os.path.join(alt_root, "proc", str(pid), "ns", "pid"), os.O_RDONLY | os.O_CLOEXEC
            )
        except OSError:
            return None
        inode = os.fstat(fd).st_ino
        if expect is not None and inode != expect:
            os.close(fd)
            return None
        return NamespaceHold(fd, inode)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
