"""Argument limits shared with the Rust core: the one place Python reads them.

The ranges come from ``syshub._native`` (``bpf-rs/src/limits.rs``), so the spec, the Hub and
the CLI reject exactly what the probe would reject, with a one-line
:class:`~syshub.errors.TraceSpecError` naming the field instead of an error from deep inside
the probe. :class:`Capture` is the per-filter capture sizes value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Final

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool

from syshub._native import (
    ARGV_MAX_LIMIT,
    BUF_MAX_LIMIT,
    RING_BYTES_MAX,
    RING_BYTES_MIN,
    SAMPLE_RATE_MAX,
    STR_MAX_LIMIT,
)
from syshub.errors import TraceSpecError
from syshub.spec.base import FrozenSpecModel
from syshub.spec.common import short_repr, type_name

__all__ = [
    "ARGV_MAX_LIMIT",
    "BUF_MAX_LIMIT",
    "DEFAULT_ARGV_MAX",
    "DEFAULT_BUF_MAX",
    "DEFAULT_STR_MAX",
    "RING_BYTES_MAX",
    "RING_BYTES_MIN",
    "SAMPLE_RATE_MAX",
    "STR_MAX_LIMIT",
    "Capture",
    "check_int_range",
    "validate_ring_bytes",
    "validate_sample_rate",
]

#: Default capture sizes, as the probe's ``add_filter`` has them.
DEFAULT_STR_MAX: Final = 256
DEFAULT_ARGV_MAX: Final = 32
DEFAULT_BUF_MAX: Final = 64


def check_int_range(value: object, low: int, high: int, field: str, note: str = "") -> int:
    """``value`` when it is an integer (not a bool) in ``low..high``, else a one-line
    :class:`TraceSpecError` naming ``field``; ``note`` is added after the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceSpecError(
            field, f"expected an integer, got {type_name(value)} {short_repr(value)}"
        )
    if not low <= value <= high:
        raise TraceSpecError(field, f"must be {low}..{high}{note}, got {value}")
    return value


def validate_sample_rate(value: object, field: str = "sampleRate") -> int:
    """The effective 1-in-N rate: ``0..SAMPLE_RATE_MAX`` accepted, ``0`` read as ``1``."""
    rate = check_int_range(value, 0, SAMPLE_RATE_MAX, field, " (0 and 1 deliver every event)")
    return max(rate, 1)


def validate_ring_bytes(value: object, field: str = "ringBytes") -> int:
    """A ring buffer size: a power of two in ``RING_BYTES_MIN..RING_BYTES_MAX``."""
    size = check_int_range(value, RING_BYTES_MIN, RING_BYTES_MAX, field, " (a power of two)")
    if size & (size - 1):
        raise TraceSpecError(
            field, f"must be a power of two in {RING_BYTES_MIN}..{RING_BYTES_MAX}, got {size}"
        )
    return size


def _ranged(low: int, high: int) -> BeforeValidator:
    """A pydantic validator for ``low..high`` (paths relative to the field)."""
    return BeforeValidator(lambda value: check_int_range(value, low, high, ""))


class Capture(FrozenSpecModel):
    """How much of each argument a filter captures: bytes per string (``str_max``), argv/envp
    entries (``argv_max``) and bytes per buffer (``buf_max``), and whether calls are timed
    from entry to exit (``durations``). Immutable and hashable; the manifest spelling is
    camelCase (``strMax``, ``argvMax``, ``bufMax``, ``durations``). Out-of-range values
    raise ``TraceSpecError`` such as ``capture.strMax: must be 1..4096, got 0``."""

    model_config = ConfigDict(
        json_schema_extra={"description": "how much of each argument a filter captures"}
    )
    field_path: ClassVar[str] = "capture"

    str_max: Annotated[int, _ranged(1, STR_MAX_LIMIT)] = Field(
        DEFAULT_STR_MAX,
        alias="strMax",
        json_schema_extra={"minimum": 1, "maximum": STR_MAX_LIMIT},
        description="bytes captured per string argument",
    )
    argv_max: Annotated[int, _ranged(0, ARGV_MAX_LIMIT)] = Field(
        DEFAULT_ARGV_MAX,
        alias="argvMax",
        json_schema_extra={"minimum": 0, "maximum": ARGV_MAX_LIMIT},
        description="argv/envp entries captured",
    )
    buf_max: Annotated[int, _ranged(0, BUF_MAX_LIMIT)] = Field(
        DEFAULT_BUF_MAX,
        alias="bufMax",
        json_schema_extra={"minimum": 0, "maximum": BUF_MAX_LIMIT},
        description="bytes captured per buffer argument",
    )
    durations: StrictBool = Field(
        False,
        alias="durations",
        description="time each call from entry to exit (adds each traced syscall's entry "
        "hook: about twice the cost per call); without it a call carries its exit time only",
    )

    if TYPE_CHECKING:  # the Python names; manifests use from_manifest() (camelCase)

        def __init__(
            self,
            *,
            str_max: int = DEFAULT_STR_MAX,
            argv_max: int = DEFAULT_ARGV_MAX,
            buf_max: int = DEFAULT_BUF_MAX,
            durations: bool = False,
        ) -> None: ...
