"""Durations as Kubernetes writes them (``metav1.Duration``, Go's ``time.Duration`` text).

Reading accepts Go duration strings (``"90s"``, ``"1m30s"``, ``"1.5h"``, ``"500ms"``,
``"300us"``/``"µs"``, ``"ns"``), parsed by the durationpy library after a check that the text
uses Go's grammar and units only (durationpy also knows days, weeks and years; Go does not),
plus a bare number of seconds (``90``, ``"90"``) or a ``timedelta``. The resolution is one
microsecond (durationpy yields a ``timedelta``); a positive duration must be at least that.
Writing produces Go's ``Duration.String()`` spelling (``"5m0s"``), what the API server and
swoll's controller print. Pure Python.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Final

import durationpy
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from syshub.errors import TraceSpecError
from syshub.spec.common import short_repr, type_name

__all__ = [
    "MAX_DURATION",
    "Duration",
    "LimitDuration",
    "OptionalDuration",
    "format_duration",
    "is_zero_duration",
    "parse_duration",
]

#: Largest accepted duration: what Go's ``time.Duration`` (int64 nanoseconds) can hold.
MAX_DURATION: Final = timedelta(microseconds=(2**63 - 1) // 1000)

_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
_GO_DURATION_RE: Final = re.compile(rf"[+-]?(?:{_NUMBER}(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_BARE_NUMBER_RE: Final = re.compile(rf"[+-]?{_NUMBER}")
_HELP: Final = "expected e.g. '90s', '1m30s', '1h', '500ms' or a number of seconds"


def _seconds(amount: float, value: object, path: str) -> timedelta:
    if not math.isfinite(amount):
        raise TraceSpecError(path, f"invalid duration {short_repr(value)} ({_HELP})")
    try:
        return timedelta(seconds=amount)
    except OverflowError:
        raise TraceSpecError(path, f"too long: {short_repr(value)}") from None


def _timedelta(value: object, path: str) -> timedelta:
    """Any accepted spelling as a ``timedelta`` (sign kept; not range-checked)."""
    if isinstance(value, bool):
        raise TraceSpecError(path, f"expected a duration, got boolean {value!r}")
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return _seconds(value, value, path)
    if not isinstance(value, str):
        raise TraceSpecError(path, f"expected a duration, got {type_name(value)}")
    text = value.strip()
    if _BARE_NUMBER_RE.fullmatch(text):
        return _seconds(float(text), value, path)
    if not _GO_DURATION_RE.fullmatch(text):
        raise TraceSpecError(path, f"invalid duration {short_repr(value)} ({_HELP})")
    try:
        return durationpy.from_str(text)
    except durationpy.DurationError:
        raise TraceSpecError(path, f"too long: {short_repr(value)}") from None


def parse_duration(value: object, field: str = "spec.duration") -> float:
    """Seconds for a Go duration string, a bare number of seconds or a ``timedelta``.

    Zero, negative, below one microsecond, longer than Go's ``time.Duration`` can hold,
    non-finite or malformed values raise :class:`TraceSpecError` naming ``field``.
    """
    delta = _timedelta(value, field)
    if delta <= timedelta(0):
        raise TraceSpecError(
            field, f"must be positive (at least 1\u00b5s), got {short_repr(value)}"
        )
    if delta > MAX_DURATION:
        raise TraceSpecError(field, f"too long: {short_repr(value)} (at most about 292 years)")
    return delta.total_seconds()


def is_zero_duration(value: object) -> bool:
    """Whether ``value`` is a valid spelling of zero (``"0s"``, ``"0"``, ``0``, ``"0h0m0s"``,
    ``timedelta(0)``): what Go writes for an unset ``metav1.Duration``. Anything else,
    malformed text included, is not (validation then reports it)."""
    try:
        return _timedelta(value, "") == timedelta(0)
    except TraceSpecError:
        return False


def _format_fraction(whole: int, frac: int, digits: int) -> str:
    """``whole`` plus ``frac`` / 10**digits, with trailing zeros (and a bare '.') removed."""
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` spelling: ``"5m0s"``, ``"1h30m0s"``, ``"1.5s"``,
    ``"500ms"``, ``"300ns"``; what ``metav1.Duration`` serializes to."""
    ns = round(Decimal(seconds) * 1_000_000_000)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_format_fraction(ns // 1_000, ns % 1_000, 3)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_format_fraction(ns // 1_000_000, ns % 1_000_000, 6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    secs = _format_fraction(rest // 1_000_000_000, rest % 1_000_000_000, 9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{secs}s"


def _relative(value: object) -> float:
    return parse_duration(value, "")


_SCHEMA: Final = WithJsonSchema({"type": "string", "description": "Go duration, e.g. '1h30m'"})

#: A pydantic field type: seconds (float) in Python, a Go duration string in manifests.
Duration = Annotated[
    float,
    BeforeValidator(_relative),
    PlainSerializer(format_duration, return_type=str),
    _SCHEMA,
]
#: :data:`Duration` or ``None`` (no limit), described as a plain string.
OptionalDuration = Annotated[Duration | None, _SCHEMA]


def _zero_is_no_limit(value: object) -> object:
    return None if is_zero_duration(value) else value


#: A time limit: :data:`OptionalDuration` where zero (``"0s"``, what swoll's Go types write
#: for an unset duration) also means no limit (``None``).
LimitDuration = Annotated[OptionalDuration, BeforeValidator(_zero_is_no_limit)]
