"""Unit tests for the hand-written protobuf wire codec (no privileges needed)."""

from __future__ import annotations

import contextlib
import importlib.util
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if importlib.util.find_spec("syshub") is None:  # source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

from syshub.errors import SyshubError
from syshub.topology.protowire import (
    Message,
    WireError,
    Writer,
    decode_varint,
    encode_varint,
    iter_fields,
    zigzag_decode,
    zigzag_encode,
)

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
UINT64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


# ----------------------------------------------------------------------------- varints


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
        (-1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded
    decoded, pos = decode_varint(encoded)
    assert pos == len(encoded)
    assert decoded == value & ((1 << 64) - 1)


@given(UINT64)
def test_varint_round_trip(value: int) -> None:
    assert decode_varint(encode_varint(value)) == (value, len(encode_varint(value)))


@given(INT64)
def test_zigzag_round_trip(value: int) -> None:
    assert zigzag_decode(zigzag_encode(value)) == value


def test_zigzag_known_values() -> None:
    assert [zigzag_encode(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]


def test_varint_out_of_range_rejected() -> None:
    with pytest.raises(WireError, match="64 bits"):
        encode_varint(1 << 64)
    with pytest.raises(WireError, match="signed 64-bit"):
        encode_varint(-(1 << 63) - 1)


def test_varint_too_long_rejected() -> None:
    with pytest.raises(WireError, match="longer than 10 bytes"):
        decode_varint(b"\x80" * 11)
    with pytest.raises(WireError, match="overflows"):
        decode_varint(b"\xff" * 9 + b"\x7f")


def test_truncated_varint_rejected() -> None:
    with pytest.raises(WireError, match="truncated varint"):
        decode_varint(b"\x80\x80")


# ----------------------------------------------------------------------------- round trips


def test_scalar_round_trip() -> None:
    data = (
        Writer()
        .varint(1, 150)
        .varint(2, -5)
        .sint(3, -123456)
        .boolean(4, True)
        .fixed32(5, 0xDEADBEEF)
        .fixed32(6, -2)
        .fixed64(7, (1 << 64) - 1)
        .fixed64(8, -3)
        .float32(9, 1.5)
        .double(10, -2.25)
        .string(11, "héllo")
        .data(12, b"\x00\x01\xff")
        .finish()
    )
    msg = Message(data)
    assert msg.uint(1) == 150
    assert msg.int64(2) == -5
    assert msg.int32(2) == -5
    assert msg.sint(3) == -123456
    assert msg.boolean(4) is True
    assert msg.fixed32(5) == 0xDEADBEEF
    assert msg.sfixed32(6) == -2
    assert msg.fixed64(7) == (1 << 64) - 1
    assert msg.sfixed64(8) == -3
    assert msg.float32(9) == 1.5
    assert msg.double(10) == -2.25
    assert msg.string(11) == "héllo"
    assert msg.data(12) == b"\x00\x01\xff"
    assert msg.fields() == list(range(1, 13))


def test_known_bytes_match_protobuf() -> None:
    # the canonical example of the protobuf encoding guide: field 1 = 150
    assert Writer().varint(1, 150).finish() == b"\x08\x96\x01"
    # field 2 = "testing"
    assert Writer().string(2, "testing").finish() == b"\x12\x07testing"


def test_defaults_omitted_unless_always() -> None:
    assert Writer().varint(1, 0).string(2, "").boolean(3, False).finish() == b""
    assert Writer().varint(1, 0, always=True).finish() == b"\x08\x00"
    msg = Message(b"")
    assert (msg.uint(1), msg.string(2), msg.boolean(3), msg.message(4)) == (0, "", False, None)


def test_empty_nested_message_is_present() -> None:
    data = Writer().message(2, Writer()).finish()
    assert data == b"\x12\x00"
    nested = Message(data).message(2)
    assert nested is not None
    assert nested.fields() == []
    assert Writer().message(2, None).finish() == b""


def test_nested_and_repeated_round_trip() -> None:
    inner = Writer().string(1, "name").varint(2, 3)
    data = (
        Writer()
        .message(1, inner)
        .repeated_string(2, ["a", "", "c"])
        .repeated_message(3, [Writer().varint(1, i) for i in range(3)])
        .packed_varint(4, [1, 300, 0, (1 << 64) - 1])
        .finish()
    )
    msg = Message(data)
    nested = msg.message_or_empty(1)
    assert (nested.string(1), nested.uint(2)) == ("name", 3)
    assert msg.repeated_string(2) == ["a", "", "c"]
    assert [m.uint(1) for m in msg.repeated_message(3)] == [0, 1, 2]
    assert msg.repeated_uint(4) == [1, 300, 0, (1 << 64) - 1]
    assert msg.repeated_int64(4)[-1] == -1


def test_repeated_varint_accepts_packed_and_unpacked() -> None:
    data = Writer().varint(1, 7).packed_varint(1, [8, 9]).varint(1, 10).finish()
    assert Message(data).repeated_uint(1) == [7, 8, 9, 10]


def test_map_round_trip_and_edge_cases() -> None:
    labels = {"io.kubernetes.pod.name": "web", "app": "nginx", "empty": ""}
    msg = Message(Writer().map_str(6, labels).finish())
    assert msg.map_str(6) == labels
    # an entry without a value (or key) decodes to "" like protobuf does
    data = Writer().message(6, Writer().string(1, "k")).message(6, Writer()).finish()
    assert Message(data).map_str(6) == {"k": "", "": ""}
    # later entries with the same key win
    dup = Writer().map_str(1, {"k": "a"}).map_str(1, {"k": "b"}).finish()
    assert Message(dup).map_str(1) == {"k": "b"}
    assert Writer().map_str(1, None).finish() == b""


def test_last_scalar_wins_and_messages_merge() -> None:
    data = (
        Writer()
        .varint(1, 1)
        .varint(1, 2)
        .message(2, Writer().string(1, "x"))
        .message(2, Writer().varint(2, 5))
        .finish()
    )
    msg = Message(data)
    assert msg.uint(1) == 2
    merged = msg.message_or_empty(2)
    assert (merged.string(1), merged.uint(2)) == ("x", 5)
    assert len(msg.raw(1)) == 2


@given(
    st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=8),
    st.lists(st.text(max_size=10), max_size=8),
    INT64,
)
def test_property_round_trip(labels: dict[str, str], strings: list[str], number: int) -> None:
    data = (
        Writer()
        .varint(1, number)
        .map_str(2, labels)
        .repeated_string(3, strings)
        .message(4, Writer().sint(1, number))
        .finish()
    )
    msg = Message(data)
    assert msg.int64(1) == number
    assert msg.map_str(2) == labels
    assert msg.repeated_string(3) == strings
    assert msg.message_or_empty(4).sint(1) == number


# ----------------------------------------------------------------------------- unknown fields


def test_unknown_fields_are_skipped() -> None:
    # a "newer" sender adds fields of every wire type around the ones we know
    data = (
        Writer()
        .fixed64(100, 1)
        .string(1, "known")
        .fixed32(101, 2)
        .message(102, Writer().string(1, "nested unknown"))
        .varint(103, -1)
        .varint(2, 42)
        .finish()
    )
    # plus a deprecated group (start tag 104/3 ... end tag 104/4) containing a nested group
    group = (
        encode_varint((104 << 3) | 3)
        + Writer().varint(1, 5).finish()
        + encode_varint((105 << 3) | 3)
        + encode_varint((105 << 3) | 4)
        + encode_varint((104 << 3) | 4)
    )
    msg = Message(group + data)
    assert msg.string(1) == "known"
    assert msg.uint(2) == 42
    assert 104 not in msg
    assert 100 in msg


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"\x0a\x05abc", "truncated field 1"),  # length 5, only 3 bytes
        (b"\x0a", "truncated varint"),  # tag without length
        (b"\x08", "truncated varint"),  # varint field without value
        (b"\x0d\x01\x02", "truncated field 1"),  # fixed32 with 2 bytes
        (b"\x09\x01", "truncated field 1"),  # fixed64 with 1 byte
        (b"\x00\x01", "invalid field number 0"),
        (b"\x0e", "invalid wire type 6"),
        (b"\x0f", "invalid wire type 7"),
        (b"\x0c", "unexpected end-group"),
        (b"\x0b\x08\x01", "no end-group"),
        (b"\x0b\x14", "does not match"),
    ],
)
def test_malformed_input_raises_clear_error(data: bytes, pattern: str) -> None:
    with pytest.raises(WireError, match=pattern):
        Message(data)


def test_wire_error_is_a_value_error_and_syshub_error() -> None:
    with pytest.raises(ValueError):
        Message(b"\x0a\x05")
    assert issubclass(WireError, SyshubError)


def test_wrong_wire_type_for_getter() -> None:
    msg = Message(Writer().varint(1, 1).string(2, "x").finish())
    with pytest.raises(WireError, match="expected length-delimited"):
        msg.string(1)
    with pytest.raises(WireError, match="expected varint"):
        msg.uint(2)
    with pytest.raises(WireError, match="expected a message"):
        msg.message(1)


def test_invalid_utf8_string() -> None:
    msg = Message(Writer().data(1, b"\xff\xfe").finish())
    with pytest.raises(WireError, match="invalid UTF-8"):
        msg.string(1)
    assert msg.data(1) == b"\xff\xfe"


def test_field_number_range_on_encode() -> None:
    with pytest.raises(WireError, match="out of range"):
        Writer().varint(0, 1)
    with pytest.raises(WireError, match="out of range"):
        Writer().varint(1 << 29, 1)
    with pytest.raises(WireError, match="32 bits"):
        Writer().fixed32(1, 1 << 32)


def test_deeply_nested_groups_rejected() -> None:
    data = encode_varint((1 << 3) | 3) * 100
    with pytest.raises(WireError, match="nested deeper"):
        Message(data)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_terminate(data: bytes) -> None:
    # never hangs, never raises anything but WireError
    try:
        fields = list(iter_fields(data))
    except WireError:
        return
    assert len(fields) <= len(data)


@given(st.binary(min_size=1, max_size=40))
def test_every_truncation_of_a_valid_message_is_handled(payload: bytes) -> None:
    data = Writer().data(1, payload).fixed64(2, 7).string(3, "end").finish()
    for cut in range(len(data)):
        with contextlib.suppress(WireError):
            Message(data[:cut])


def test_float_encoding_matches_struct() -> None:
    data = Writer().float32(1, 0.1).finish()
    assert data[1:] == struct.pack("<f", 0.1)
