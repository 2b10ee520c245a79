"""The x86_64 syscall table (number, name, class, group, argument types).

The data lives in one file compiled into the native module
(``bpf-rs/data/syscalls_x86_64.tsv``); this module reads it from there so
Python and Rust can never disagree. Lookups accept names with or without the
``sys_`` prefix, and numbers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from syshub import _native
from syshub.errors import SyscallNameError


@dataclass(frozen=True, slots=True)
class Syscall:
    nr: int
    name: str
    klass: str
    group: str
    ret: str
    tracepoint: str | None
    args: tuple[tuple[str, str], ...]

    @property
    def sys_name(self) -> str:
        """The ``sys_``-prefixed name used in swoll-compatible JSON and paths."""
        return f"sys_{self.name}"

    def to_dict(self) -> dict[str, object]:
        return {"nr": self.nr, "name": self.sys_name, "class": self.klass, "group": self.group}


@cache
def table() -> tuple[Syscall, ...]:
    """Every syscall, by number."""
    rows: list[Syscall] = []
    for line in _native.syscall_table_tsv().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        nr, name, klass, group, ret, tp, args = line.split("\t")
        parsed: tuple[tuple[str, str], ...] = ()
        if args != "-":
            parsed = tuple(
                (a.split(":", 1)[0], a.split(":", 1)[1]) for a in args.split(";") if ":" in a
            )
        rows.append(Syscall(int(nr), name, klass, group, ret, None if tp == "-" else tp, parsed))
    return tuple(sorted(rows, key=lambda s: s.nr))


@cache
def _by_name() -> dict[str, Syscall]:
    return {s.name: s for s in table()}


@cache
def _by_nr() -> dict[int, Syscall]:
    return {s.nr: s for s in table()}


def suggestions(name: str, n: int = 3) -> list[str]:
    bare = name.strip().removeprefix("sys_")
    return difflib.get_close_matches(bare, list(_by_name()), n=n, cutoff=0.6)


def lookup(name_or_nr: str | int) -> Syscall:
    """Resolve a name (``openat``, ``sys_openat``) or a number.

    Raises :class:`SyscallNameError` (a ``ValueError``) that suggests close matches.
    """
    if isinstance(name_or_nr, int) or (isinstance(name_or_nr, str) and name_or_nr.isdigit()):
        nr = int(name_or_nr)
        found = _by_nr().get(nr)
        if found is None:
            raise SyscallNameError(f"unknown syscall number {nr}")
        return found
    bare = name_or_nr.strip().removeprefix("sys_")
    found = _by_name().get(bare)
    if found is None:
        close = suggestions(bare)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise SyscallNameError(f"unknown syscall {name_or_nr!r}{hint}")
    return found


def canonical_name(name: str) -> str:
    """The bare name of a syscall; raises :class:`SyscallNameError` if unknown."""
    return lookup(name).name


def resolve_many(names: Iterable[str | int]) -> list[Syscall]:
    return [lookup(n) for n in names]


def classes() -> list[str]:
    return sorted({s.klass for s in table()})


def groups(klass: str) -> list[str]:
    return sorted({s.group for s in table() if s.klass == klass})


def calls(klass: str, group: str | None = None) -> list[Syscall]:
    return [s for s in table() if s.klass == klass and (group is None or s.group == group)]
