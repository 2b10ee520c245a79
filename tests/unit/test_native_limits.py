"""Limits exported by the native module, and range checks that fail before
the probe touches the kernel (ValueError naming the argument, never
OverflowError)."""

import pytest

from syshub import _native


def test_limits_are_exported() -> None:
    assert _native.STR_MAX_LIMIT == 4096
    assert _native.ARGV_MAX_LIMIT == 128
    assert _native.BUF_MAX_LIMIT == 4096
    assert _native.SAMPLE_RATE_MAX == 2**32 - 1
    assert _native.RING_BYTES_MIN == 4096
    assert _native.RING_BYTES_MAX == 1 << 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ring_bytes": -1}, "ring_bytes must be in 4096..=1073741824, got -1"),
        ({"ring_bytes": 0}, "ring_bytes must be in 4096..=1073741824, got 0"),
        ({"ring_bytes": 1 << 31}, f"ring_bytes must be in 4096..=1073741824, got {1 << 31}"),
        ({"ring_bytes": 10**40}, f"ring_bytes must be in 4096..=1073741824, got {10**40}"),
        ({"ring_bytes": 5000}, "ring_bytes must be a power of two in 4096..=1073741824"),
        ({"poll_ms": 0}, "poll_ms must be in 1..=1000, got 0"),
        ({"wakeup_bytes": -1}, "wakeup_bytes must be in 0..="),
        ({"self_tgid": 2**32}, "self_tgid must be in 0..=4294967295"),
    ],
)
def test_probe_rejects_out_of_range(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid argument: ") as info:
        _native.Probe(**kwargs)
    assert message in str(info.value)


def test_probe_rejects_non_int() -> None:
    with pytest.raises(TypeError):
        _native.Probe("big")  # type: ignore[arg-type]


@pytest.mark.bpf
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": -1}, "sample_rate must be in 0..=4294967295, got -1"),
        ({"sample_rate": 2**32}, f"sample_rate must be in 0..=4294967295, got {2**32}"),
        ({"str_max": 0}, "str_max must be in 1..=4096, got 0"),
        ({"str_max": 70000}, "str_max must be in 1..=4096, got 70000"),
        ({"argv_max": 129}, "argv_max must be in 0..=128, got 129"),
        ({"buf_max": -5}, "buf_max must be in 0..=4096, got -5"),
        ({"buf_max": 10**30}, f"buf_max must be in 0..=4096, got {10**30}"),
    ],
)
def test_add_filter_rejects_out_of_range(kwargs: dict[str, int], message: str) -> None:
    with _native.Probe(_native.RING_BYTES_MIN * 16) as probe:
        with pytest.raises(ValueError, match=r"^invalid argument: ") as info:
            probe.add_filter(0, "getpid", **kwargs)
        assert message in str(info.value)
        with pytest.raises(ValueError, match=r"pid_ns must be in 0\.\.=4294967295, got -1"):
            probe.add_filter(-1, "getpid")
        probe.add_filter(
            0,
            "getpid",
            0,
            str_max=_native.STR_MAX_LIMIT,
            argv_max=_native.ARGV_MAX_LIMIT,
            buf_max=_native.BUF_MAX_LIMIT,
        )
        assert probe.filters()[0]["str_max"] == _native.STR_MAX_LIMIT
        with pytest.raises(ValueError, match=r"pid_ns must be in 0\.\.=4294967295, got -1"):
            probe.remove_filter(-1, "getpid")
        with pytest.raises(ValueError, match=r"max_events must be in 1\.\.=4294967295, got 0"):
            probe.poll(0)
        with pytest.raises(ValueError, match=r"max_events must be in 1\.\.="):
            probe.poll(-5)
        with pytest.raises(ValueError, match="timeout_ms must be in "):
            probe.poll(1, timeout_ms=2**70)
        assert isinstance(probe.poll(1, timeout_ms=0), _native.Batch)
