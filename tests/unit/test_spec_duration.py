"""Durations (Go text via durationpy, seconds, timedelta) and RFC 3339 timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.spec_env import manifest, resolve
from syshub.errors import TraceSpecError
from syshub.spec import Trace, format_duration, parse_duration
from syshub.spec.duration import MAX_DURATION
from syshub.spec.timestamp import format_time, parse_time

# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("2h45m", 9900.0),
        ("1.5h", 5400.0),
        ("300us", 0.0003),
        ("300\u00b5s", 0.0003),
        ("300\u03bcs", 0.0003),
        ("3000ns", 3e-6),
        ("1us", 1e-6),
        ("1h2m3.5s", 3723.5),
        ("1h0m0.5s", 3600.5),
        (".5s", 0.5),
        ("+10s", 10.0),
        (" 5m ", 300.0),
        (90, 90.0),
        (1.25, 1.25),
        ("90", 90.0),
        ("2.5", 2.5),
        (timedelta(minutes=2, microseconds=5), 120.000005),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5m", "must be positive"),
        ("0s", "must be positive"),
        ("0", "must be positive"),
        (0, "must be positive"),
        (-1, "must be positive"),
        ("0.1ns", "must be positive"),
        ("250ns", "must be positive (at least 1\u00b5s), got '250ns'"),
        ("1w", "invalid duration"),
        ("2y", "invalid duration"),
        ("1.2.3s", "invalid duration"),
        ("1e3s", "invalid duration"),
        (10**30, "too long"),
        ("9" * 40, "too long"),
        ("5", None),
        ("abc", "invalid duration 'abc'"),
        ("5 m", "invalid duration"),
        ("1d", "invalid duration"),
        ("m5", "invalid duration"),
        ("", "invalid duration"),
        (".s", "invalid duration"),
        (float("nan"), "invalid duration"),
        (float("inf"), "invalid duration"),
        (True, "expected a duration, got boolean"),
        ([5], "expected a duration, got list"),
        ("3000000h", "too long"),
    ],
)
def test_parse_duration_errors(value: object, message: str | None) -> None:
    if message is None:  # control: a bare number string is fine
        assert parse_duration(value) == 5.0
        return
    with pytest.raises(TraceSpecError, match=re.escape(message)) as info:
        parse_duration(value)
    assert info.value.field == "spec.duration"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300.0, "5m0s"),
        (3600.0, "1h0m0s"),
        (5400.0, "1h30m0s"),
        (90.0, "1m30s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (0.0003, "300\u00b5s"),
        (2.5e-7, "250ns"),
        (0.0, "0s"),
        (3600.5, "1h0m0.5s"),
        (-90.0, "-1m30s"),
    ],
)
def test_format_duration_matches_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**15))
def test_property_duration_text_round_trip(us: int) -> None:
    """Whole microseconds (the resolution) survive Go text exactly."""
    seconds = us / 1_000_000
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers(), st.none(), st.booleans()))
def test_property_parse_duration_fails_only_with_trace_spec_error(value: object) -> None:
    try:
        seconds = parse_duration(value, "x.duration")
    except TraceSpecError as exc:
        assert exc.field == "x.duration"
        assert "\n" not in str(exc)
    else:
        assert 1e-6 <= seconds <= MAX_DURATION.total_seconds()


def test_duration_field_in_a_model() -> None:
    """The Duration type reads any spelling and writes Go text; errors name the field."""
    trace = Trace.new("d", ["read"], duration="1h2m3.5s", resolve=resolve)
    assert trace.spec.duration == 3723.5
    assert trace.spec.to_dict()["duration"] == "1h2m3.5s"
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(manifest(duration=[1]), resolve=resolve)
    assert str(info.value) == "spec.duration: expected a duration, got list"


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-01-02T03:04:05Z", datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2021-01-02T05:04:05.123456789+02:00", datetime(2021, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        (datetime(2021, 1, 2), datetime(2021, 1, 2, tzinfo=UTC)),
        (
            datetime(2021, 1, 2, 1, tzinfo=timezone(timedelta(hours=1))),
            datetime(2021, 1, 2, tzinfo=UTC),
        ),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value, "status.startTime") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "invalid RFC 3339 timestamp 'yesterday'"),
        (5, "expected an RFC 3339 timestamp, got integer"),
        (datetime.min.replace(tzinfo=timezone(timedelta(hours=1))), "invalid RFC 3339"),
    ],
)
def test_parse_time_errors(value: object, message: str) -> None:
    with pytest.raises(TraceSpecError, match=re.escape(message)) as info:
        parse_time(value, "status.startTime")
    assert info.value.field == "status.startTime"


def test_format_time() -> None:
    assert (
        format_time(datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)) == "2024-05-06T07:08:09.25Z"
    )
    assert format_time(datetime(2024, 5, 6, 7, 8, 9)) == "2024-05-06T07:08:09Z"
