"""RFC 3339 timestamps as Kubernetes writes them (``metav1.Time``): read into aware UTC
``datetime`` values, written as ``2021-01-02T03:04:05Z`` (fractions only when present).
Pure Python.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from syshub.errors import TraceSpecError
from syshub.spec.common import short_repr, type_name

__all__ = ["Timestamp", "as_utc", "format_time", "parse_time"]

_FRACTION_RE: Final = re.compile(r"(\.\d{6})\d+")


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_time(value: object, path: str = "") -> datetime | None:
    """RFC 3339 text (or a datetime, as YAML parses unquoted ones) -> aware UTC; ``None`` and
    ``""`` are unset. Go's nanoseconds are cut to microseconds."""
    if value is None or value == "":
        return None
    if not isinstance(value, datetime | str):
        raise TraceSpecError(path, f"expected an RFC 3339 timestamp, got {type_name(value)}")
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", value.strip()))
        return as_utc(value)
    except (ValueError, OverflowError):
        raise TraceSpecError(
            path,
            f"invalid RFC 3339 timestamp {short_repr(value)} (e.g. '2021-01-02T03:04:05Z')",
        ) from None


def format_time(moment: datetime) -> str:
    moment = as_utc(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


#: A pydantic field type: an optional aware-UTC datetime, RFC 3339 text in manifests.
Timestamp = Annotated[
    datetime | None,
    BeforeValidator(parse_time),
    PlainSerializer(lambda m: None if m is None else format_time(m), return_type=str | None),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
