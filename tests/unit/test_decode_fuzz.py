"""Random and truncated records through the native decoder (the binding path):
it returns an Event whose every view works, or raises ValueError, and never
crashes the interpreter."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from syshub import probe as syshub_probe

HDR = syshub_probe.abi_layout()["syshub_event"]["__size__"][1]


def _openat_record(path: bytes) -> bytes:
    caps = struct.pack("<BBHIII", 1, 1, 0, len(path), len(path), 0) + path
    caps += b"\0" * (-len(caps) % 8)
    size = HDR + len(caps)
    hdr = bytearray(HDR)
    struct.pack_into("<HHII", hdr, 0, 1, 0, size, 257)  # kind, flags, size, nr
    struct.pack_into("<H", hdr, syshub_probe.abi_layout()["syshub_event"]["ncaptures"][0], 1)
    struct.pack_into("<q", hdr, syshub_probe.abi_layout()["syshub_event"]["ret"][0], 3)
    struct.pack_into(
        "<Q", hdr, syshub_probe.abi_layout()["syshub_event"]["args"][0], (-100) & (2**64 - 1)
    )
    return bytes(hdr) + caps


def _exercise(rec: bytes) -> None:
    try:
        ev = syshub_probe.decode_record(rec)
    except ValueError:
        return
    assert ev.to_text()
    assert isinstance(ev.to_dict(), dict)
    assert isinstance(ev.args, dict)
    assert len(ev.raw_args) == 6


def test_valid_record_decodes() -> None:
    ev = syshub_probe.decode_record(_openat_record(b"/etc/hostname"))
    assert ev.syscall == "openat"
    assert ev.args["filename"] == "/etc/hostname"
    assert ev.args["dfd"] == "AT_FDCWD"
    assert ev.ret == 3


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    _exercise(data)


@settings(max_examples=400, deadline=None)
@given(
    path=st.binary(min_size=0, max_size=300),
    cut=st.integers(min_value=0, max_value=500),
    flips=st.lists(st.tuples(st.integers(0, 499), st.integers(0, 255)), max_size=8),
)
def test_truncated_and_corrupted_records_never_crash(
    path: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    rec = bytearray(_openat_record(path))
    for pos, val in flips:
        if pos < len(rec):
            rec[pos] = val
    _exercise(bytes(rec[:cut]))
    _exercise(bytes(rec))
