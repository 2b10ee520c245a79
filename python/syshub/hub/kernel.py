"""The Hub's thin layer over the kernel: filter operations from the plan,
per-key sequences, process scopes, and held pid namespaces.

A pid namespace's inode is reused as soon as the namespace dies, and a
filter on a reused inode would trace someone else: whoever installs a
filter for a namespace holds it open (:class:`NamespaceHold`) until the
filter is gone.

A filter key is ``(pid namespace inode, syscall nr)``, so a key removed with
its dead namespace comes back when the inode goes to a new namespace. The
probe counts each lifetime of a key apart
(:attr:`syshub.probe.KeyStats.lifetime`): a re-added key's counters start at
0, and what its earlier filters counted is a second entry after it."""

from __future__ import annotations

import os
from typing import Protocol

from syshub.errors import HubError
from syshub.hub.plan import KernelOp, Key, SetFilter
from syshub.probe import Probe


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
        self._live: set[Key] = set()

    def apply(self, op: KernelOp) -> None:
        key = op.key
        if isinstance(op, SetFilter):
            limit = self.max_keys
            if limit is not None and key not in self._live and len(self._live) >= limit:
                raise HubError(
                    f"the node's filter-key limit is reached ({limit} keys, "
                    "setting max_filter_keys)"
                )
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
        else:
            self.probe.remove_filter(*key)
            self._live.discard(key)

    def current(self) -> dict[Key, int]:
        return {(f.pid_ns, f.nr): f.sample_rate for f in self.probe.filters()}

    def sequences(self) -> dict[Key, int]:
        return self.probe.sequences()

    def add_scope(self, pid: int) -> int:
        return self.probe.add_scope(pid)

    def remove_scope(self, scope: int) -> None:
        self.probe.remove_scope(scope)


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
