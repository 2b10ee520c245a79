"""Argument limits shared with the Rust core: Capture, sample rates and ring sizes are checked in
Python with the native module's ranges, with one-line errors naming the field, and Python
rejects exactly what the native side rejects."""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syshub import _native
from syshub.errors import TraceSpecError
from syshub.spec import limits
from syshub.spec.limits import Capture, validate_ring_bytes, validate_sample_rate


def test_limits_are_the_native_ones() -> None:
    assert limits.STR_MAX_LIMIT == _native.STR_MAX_LIMIT == 4096
    assert limits.ARGV_MAX_LIMIT == _native.ARGV_MAX_LIMIT
    assert limits.BUF_MAX_LIMIT == _native.BUF_MAX_LIMIT
    assert limits.SAMPLE_RATE_MAX == _native.SAMPLE_RATE_MAX == 2**32 - 1
    assert limits.RING_BYTES_MIN == _native.RING_BYTES_MIN
    assert limits.RING_BYTES_MAX == _native.RING_BYTES_MAX


# --------------------------------------------------------------------------- Capture


def test_capture_defaults_match_the_probe() -> None:
    capture = Capture()
    assert (capture.str_max, capture.argv_max, capture.buf_max) == (256, 32, 64)
    assert capture.model_dump() == {
        "str_max": 256,
        "argv_max": 32,
        "buf_max": 64,
        "durations": False,
    }
    assert Capture.model_validate({"durations": True}).durations
    assert capture.to_dict() == {"strMax": 256, "argvMax": 32, "bufMax": 64, "durations": False}


def test_capture_is_a_frozen_hashable_value() -> None:
    a = Capture(str_max=1024, argv_max=0, buf_max=4096)
    assert a == Capture(str_max=1024, argv_max=0, buf_max=4096)
    assert len({a, Capture(str_max=1024, argv_max=0, buf_max=4096), Capture()}) == 2
    with pytest.raises(AttributeError, match="immutable"):
        a.str_max = 5  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.model_copy(update={"buf_max": 1}).buf_max == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"str_max": 0}, "capture.strMax: must be 1..4096, got 0"),
        ({"str_max": 4097}, "capture.strMax: must be 1..4096, got 4097"),
        ({"argv_max": -1}, f"capture.argvMax: must be 0..{_native.ARGV_MAX_LIMIT}, got -1"),
        (
            {"argv_max": _native.ARGV_MAX_LIMIT + 1},
            f"capture.argvMax: must be 0..{_native.ARGV_MAX_LIMIT}, "
            f"got {_native.ARGV_MAX_LIMIT + 1}",
        ),
        ({"buf_max": 10**30}, f"capture.bufMax: must be 0..4096, got {10**30}"),
        ({"buf_max": -5}, "capture.bufMax: must be 0..4096, got -5"),
        ({"str_max": "256"}, "capture.strMax: expected an integer, got string '256'"),
        ({"str_max": True}, "capture.strMax: expected an integer, got boolean True"),
        ({"str_max": 64.0}, "capture.strMax: expected an integer, got number 64.0"),
        (
            {"strmax": 1},
            "capture.strmax: unknown field (expected one of strMax, argvMax, bufMax, durations)",
        ),
    ],
)
def test_capture_rejects_out_of_range(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TraceSpecError) as info:
        Capture(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_capture_bounds_are_inclusive() -> None:
    low = Capture(str_max=1, argv_max=0, buf_max=0)
    high = Capture(
        str_max=_native.STR_MAX_LIMIT,
        argv_max=_native.ARGV_MAX_LIMIT,
        buf_max=_native.BUF_MAX_LIMIT,
    )
    assert (low.str_max, high.buf_max) == (1, 4096)


def test_capture_from_manifest_uses_camel_case() -> None:
    capture = Capture.from_manifest({"strMax": 512, "bufMax": None})
    assert capture == Capture(str_max=512)
    with pytest.raises(TraceSpecError) as info:
        Capture.from_manifest({"argvMax": 1000}, field="spec.capture")
    assert info.value.field == "spec.capture.argvMax"


# --------------------------------------------------------------------------- rates and rings


@pytest.mark.parametrize(("value", "rate"), [(0, 1), (1, 1), (7, 7), (2**32 - 1, 2**32 - 1)])
def test_validate_sample_rate(value: int, rate: int) -> None:
    assert validate_sample_rate(value) == rate


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "sampleRate: must be 0..4294967295 (0 and 1 deliver every event), got -1"),
        (2**32, f"sampleRate: must be 0..4294967295 (0 and 1 deliver every event), got {2**32}"),
        (1.5, "sampleRate: expected an integer, got number 1.5"),
        (None, "sampleRate: expected an integer, got null None"),
    ],
)
def test_validate_sample_rate_errors(value: object, message: str) -> None:
    with pytest.raises(TraceSpecError) as info:
        validate_sample_rate(value)
    assert str(info.value) == message


def test_spec_sample_rate_uses_the_same_limit() -> None:
    from support.spec_env import manifest, resolve
    from syshub.spec import Trace

    top = Trace.from_dict(manifest(sampleRate=_native.SAMPLE_RATE_MAX), resolve=resolve)
    assert top.spec.sample_rate == _native.SAMPLE_RATE_MAX
    with pytest.raises(TraceSpecError, match=re.escape("spec.sampleRate: must be 0..")):
        Trace.from_dict(manifest(sampleRate=_native.SAMPLE_RATE_MAX + 1), resolve=resolve)


@pytest.mark.parametrize("value", [4096, 8192, 1 << 24, 1 << 30])
def test_validate_ring_bytes_accepts_powers_of_two(value: int) -> None:
    assert validate_ring_bytes(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2048, "ringBytes: must be 4096..1073741824 (a power of two), got 2048"),
        (1 << 31, f"ringBytes: must be 4096..1073741824 (a power of two), got {1 << 31}"),
        (5000, "ringBytes: must be a power of two in 4096..1073741824, got 5000"),
        ("16M", "ringBytes: expected an integer, got string '16M'"),
    ],
)
def test_validate_ring_bytes_errors(value: object, message: str) -> None:
    with pytest.raises(TraceSpecError) as info:
        validate_ring_bytes(value)
    assert str(info.value) == message
    with pytest.raises(TraceSpecError, match=r"^--ring-bytes: "):
        validate_ring_bytes(value, "--ring-bytes")


@given(st.one_of(st.integers(min_value=-(2**40), max_value=2**40), st.integers()))
def test_property_rejected_ring_sizes_are_rejected_by_the_probe_too(value: int) -> None:
    """Whatever Python rejects, the native probe rejects before touching the kernel (so the
    two ranges agree; accepted sizes would load a probe, which a unit test does not)."""
    try:
        validate_ring_bytes(value)
    except TraceSpecError:
        with pytest.raises(ValueError, match=r"^invalid argument: ring_bytes must be"):
            _native.Probe(value)


@pytest.mark.bpf
def test_capture_and_rate_limits_agree_with_add_filter() -> None:
    """At every edge, Python and the real probe's add_filter accept and reject the same."""
    edges = {
        "str_max": (0, 1, _native.STR_MAX_LIMIT, _native.STR_MAX_LIMIT + 1),
        "argv_max": (-1, 0, _native.ARGV_MAX_LIMIT, _native.ARGV_MAX_LIMIT + 1),
        "buf_max": (-1, 0, _native.BUF_MAX_LIMIT, _native.BUF_MAX_LIMIT + 1),
    }
    with _native.Probe(_native.RING_BYTES_MIN * 16) as probe:
        for name, values in edges.items():
            for value in values:
                try:
                    Capture(**{name: value})  # type: ignore[arg-type]
                    python_ok = True
                except TraceSpecError:
                    python_ok = False
                try:
                    probe.add_filter(0, "getppid", **{name: value})  # type: ignore[arg-type]
                    native_ok = True
                except ValueError:
                    native_ok = False
                assert python_ok is native_ok, (name, value)
        for rate in (-1, 0, _native.SAMPLE_RATE_MAX, _native.SAMPLE_RATE_MAX + 1):
            try:
                validate_sample_rate(rate)
                python_ok = True
            except TraceSpecError:
                python_ok = False
            try:
                probe.add_filter(0, "getppid", rate)
                native_ok = True
            except ValueError:
                native_ok = False
            assert python_ok is native_ok, ("sample_rate", rate)
        probe.remove_filter(0, "getppid")
