"""The filter plan, pure: job contexts in, kernel operations out.

A kernel key (pid namespace or process scope, syscall nr) is wanted while
at least one job context needs it. It is sampled at the gcd of the rates of
those contexts (each job then takes exactly the sequence numbers that are
multiples of its own rate) and captures as much as the most demanding job
asked for. :func:`plan_key` says what to change in the kernel so that it
holds exactly that; nothing here touches the kernel."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

Key = tuple[int, int]
"""(pid namespace inode, 0 for every namespace, or a process scope id; syscall nr)."""

DEFAULT_STR_MAX = 256
DEFAULT_ARGV_MAX = 32
DEFAULT_BUF_MAX = 64


class CaptureSizes(Protocol):
    """How much of each argument a job wants captured (:class:`syshub.spec.limits.Capture`)."""

    @property
    def str_max(self) -> int: ...

    @property
    def argv_max(self) -> int: ...

    @property
    def buf_max(self) -> int: ...

    @property
    def durations(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """What one kernel filter is set to."""

    sample_rate: int
    str_max: int = DEFAULT_STR_MAX
    argv_max: int = DEFAULT_ARGV_MAX
    buf_max: int = DEFAULT_BUF_MAX
    durations: bool = False


@dataclass(frozen=True, slots=True)
class SetFilter:
    key: Key
    config: KeyConfig


@dataclass(frozen=True, slots=True)
class RemoveFilter:
    key: Key


KernelOp = SetFilter | RemoveFilter


def key_config(wants: Iterable[tuple[int, CaptureSizes | None]]) -> KeyConfig | None:
    """The filter that serves every (sample rate, capture sizes) of a key's
    contexts: gcd of the rates, the largest of each capture size, durations
    when any wants them. None when nothing wants the key."""
    rate = 0
    str_max = argv_max = buf_max = 0
    any_want = durations = False
    for r, cap in wants:
        any_want = True
        rate = math.gcd(rate, max(1, r))
        str_max = max(str_max, cap.str_max if cap else DEFAULT_STR_MAX)
        argv_max = max(argv_max, cap.argv_max if cap else DEFAULT_ARGV_MAX)
        buf_max = max(buf_max, cap.buf_max if cap else DEFAULT_BUF_MAX)
        durations = durations or bool(cap and cap.durations)
    if not any_want:
        return None
    return KeyConfig(rate, str_max, argv_max, buf_max, durations)


def plan_key(key: Key, applied: KeyConfig | None, desired: KeyConfig | None) -> KernelOp | None:
    """The one operation that turns ``applied`` into ``desired`` (None: nothing to do)."""
    if desired == applied:
        return None
    if desired is None:
        return RemoveFilter(key)
    return SetFilter(key, desired)


def plan(applied: Mapping[Key, KeyConfig], desired: Mapping[Key, KeyConfig]) -> list[KernelOp]:
    """Operations that make the kernel hold exactly ``desired`` (sorted by key)."""
    ops: list[KernelOp] = []
    for key in sorted(set(applied) | set(desired)):
        op = plan_key(key, applied.get(key), desired.get(key))
        if op is not None:
            ops.append(op)
    return ops


def apply_ops(applied: Mapping[Key, KeyConfig], ops: Iterable[KernelOp]) -> dict[Key, KeyConfig]:
    """What the kernel holds after ``ops`` (the model the property tests check)."""
    out = dict(applied)
    for op in ops:
        if isinstance(op, SetFilter):
            out[op.key] = op.config
        else:
            out.pop(op.key, None)
    return out
