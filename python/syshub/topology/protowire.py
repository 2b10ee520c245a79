"""Minimal protocol-buffers wire format: enough to hand-write a few messages.

The CRI client needs a dozen small messages; pulling in protoc-generated code
(and the ``protobuf`` runtime) for that is not worth it. This module encodes
and decodes the wire format directly:

* :class:`Writer` appends fields (varint, zigzag, fixed32/64, length-delimited,
  nested messages, repeated and packed fields, ``map<string,string>``) and
  returns the bytes with :meth:`Writer.finish`. Proto3 defaults (0, ``""``,
  ``False``) are omitted unless ``always=True``; nested messages are written
  whenever given, because their presence carries meaning.
* :class:`Message` parses bytes once into ``field number -> values`` and offers
  typed getters. Unknown fields are kept but ignored; groups (wire types 3/4)
  are skipped. Truncated or malformed input raises :class:`WireError`; every
  loop consumes at least one byte per step, so decoding always terminates.

Field numbers are those of the upstream ``.proto`` files; nothing here knows
about a particular schema.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from syshub.errors import SyshubError

__all__ = [
    "I32",
    "I64",
    "LEN",
    "VARINT",
    "Message",
    "WireError",
    "Writer",
    "decode_varint",
    "encode_varint",
    "iter_fields",
    "zigzag_decode",
    "zigzag_encode",
]

VARINT: Final = 0
I64: Final = 1
LEN: Final = 2
SGROUP: Final = 3
EGROUP: Final = 4
I32: Final = 5

MAX_FIELD_NUMBER: Final = (1 << 29) - 1
_MASK64: Final = (1 << 64) - 1
_MAX_VARINT_BYTES: Final = 10
_MAX_GROUP_DEPTH: Final = 64

FieldValue = int | bytes
"""A raw field value: ``int`` for varint/fixed fields, ``bytes`` for length-delimited."""


class WireError(SyshubError, ValueError):
    """Bytes that are not a valid protocol-buffers message (truncated, bad tag, ...)."""


# --------------------------------------------------------------------------- varints


def zigzag_encode(value: int) -> int:
    """Map a signed 64-bit integer to an unsigned one (``sint32``/``sint64``)."""
    _check_signed64(value)
    return ((value << 1) ^ (value >> 63)) & _MASK64


def zigzag_decode(value: int) -> int:
    """Inverse of :func:`zigzag_encode`."""
    return (value >> 1) ^ -(value & 1)


def encode_varint(value: int) -> bytes:
    """Encode an integer as a base-128 varint.

    Negative numbers are encoded as their 64-bit two's complement (ten bytes),
    as protobuf does for ``int32``/``int64``.
    """
    if value < 0:
        _check_signed64(value)
        value &= _MASK64
    elif value > _MASK64:
        raise WireError(f"varint value {value} does not fit in 64 bits")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode one varint at ``pos``; return ``(value, next position)``."""
    result = 0
    shift = 0
    end = len(data)
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= end:
            raise WireError(f"truncated varint at offset {pos}")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result > _MASK64:
                raise WireError(f"varint at offset {pos} overflows 64 bits")
            return result, pos + i + 1
        shift += 7
    raise WireError(f"varint at offset {pos} is longer than {_MAX_VARINT_BYTES} bytes")


def _check_signed64(value: int) -> None:
    if not -(1 << 63) <= value < (1 << 63):
        raise WireError(f"value {value} does not fit in a signed 64-bit integer")


def _to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _tag(field: int, wire_type: int) -> bytes:
    if not 1 <= field <= MAX_FIELD_NUMBER:
        raise WireError(f"field number {field} is out of range 1..{MAX_FIELD_NUMBER}")
    return encode_varint((field << 3) | wire_type)


# --------------------------------------------------------------------------- encoder


class Writer:
    """Builds one message. Methods return ``self`` so calls can be chained."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def finish(self) -> bytes:
        """The encoded message."""
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    # scalars ------------------------------------------------------------------

    def varint(self, field: int, value: int, *, always: bool = False) -> Writer:
        """``int32``/``int64``/``uint32``/``uint64``/enum (negative: ten bytes)."""
        if value or always:
            self._buf += _tag(field, VARINT)
            self._buf += encode_varint(value)
        return self

    def sint(self, field: int, value: int, *, always: bool = False) -> Writer:
        """``sint32``/``sint64`` (zigzag)."""
        if value or always:
            self._buf += _tag(field, VARINT)
            self._buf += encode_varint(zigzag_encode(value))
        return self

    def boolean(self, field: int, value: bool, *, always: bool = False) -> Writer:
        return self.varint(field, 1 if value else 0, always=always)

    def fixed32(self, field: int, value: int, *, always: bool = False) -> Writer:
        """``fixed32`` (0..2**32-1) or ``sfixed32`` (negative values)."""
        if value or always:
            if not -(1 << 31) <= value < (1 << 32):
                raise WireError(f"value {value} does not fit in 32 bits")
            self._buf += _tag(field, I32)
            self._buf += struct.pack("<I", value & 0xFFFFFFFF)
        return self

    def fixed64(self, field: int, value: int, *, always: bool = False) -> Writer:
        """``fixed64`` (0..2**64-1) or ``sfixed64`` (negative values)."""
        if value or always:
            if not -(1 << 63) <= value <= _MASK64:
                raise WireError(f"value {value} does not fit in 64 bits")
            self._buf += _tag(field, I64)
            self._buf += struct.pack("<Q", value & _MASK64)
        return self

    def float32(self, field: int, value: float, *, always: bool = False) -> Writer:
        if value or always:
            self._buf += _tag(field, I32)
            self._buf += struct.pack("<f", value)
        return self

    def double(self, field: int, value: float, *, always: bool = False) -> Writer:
        if value or always:
            self._buf += _tag(field, I64)
            self._buf += struct.pack("<d", value)
        return self

    # length-delimited ---------------------------------------------------------

    def data(self, field: int, value: bytes, *, always: bool = False) -> Writer:
        if value or always:
            self._buf += _tag(field, LEN)
            self._buf += encode_varint(len(value))
            self._buf += value
        return self

    def string(self, field: int, value: str, *, always: bool = False) -> Writer:
        return self.data(field, value.encode("utf-8"), always=always)

    def message(self, field: int, value: Writer | bytes | None) -> Writer:
        """A nested message; written even when empty (presence matters). ``None`` skips it."""
        if value is None:
            return self
        body = value.finish() if isinstance(value, Writer) else value
        return self.data(field, body, always=True)

    # repeated -----------------------------------------------------------------

    def repeated_string(self, field: int, values: Iterable[str]) -> Writer:
        for v in values:
            self.string(field, v, always=True)
        return self

    def repeated_message(self, field: int, values: Iterable[Writer | bytes]) -> Writer:
        for v in values:
            self.message(field, v)
        return self

    def packed_varint(self, field: int, values: Iterable[int]) -> Writer:
        """A packed ``repeated int32/int64/uint32/uint64/enum/bool`` (omitted when empty)."""
        body = b"".join(encode_varint(v) for v in values)
        return self.data(field, body)

    def map_str(self, field: int, values: Mapping[str, str] | None) -> Writer:
        """``map<string,string>``: one entry message (key = 1, value = 2) per item, sorted."""
        items = dict(values or {})
        for key in sorted(items):
            self.message(field, Writer().string(1, key).string(2, items[key]))
        return self


# --------------------------------------------------------------------------- decoder


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, FieldValue]]:
    """Yield ``(field number, wire type, value)`` for each field of a message.

    Varint and fixed values come as unsigned ``int``; length-delimited values
    as ``bytes``. Groups are skipped. Raises :class:`WireError` on bad input.
    """
    view = memoryview(data)
    pos = 0
    end = len(view)
    while pos < end:
        field, wire_type, pos = _read_tag(view, pos)
        if wire_type == VARINT:
            value, pos = decode_varint(view, pos)
            yield field, wire_type, value
        elif wire_type == I64:
            _need(view, pos, 8, field)
            yield field, wire_type, int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
        elif wire_type == I32:
            _need(view, pos, 4, field)
            yield field, wire_type, int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        elif wire_type == LEN:
            length, pos = decode_varint(view, pos)
            _need(view, pos, length, field)
            yield field, wire_type, bytes(view[pos : pos + length])
            pos += length
        elif wire_type == SGROUP:
            pos = _skip_group(view, pos, field)
        elif wire_type == EGROUP:
            raise WireError(f"unexpected end-group tag for field {field} at offset {pos}")
        else:
            raise WireError(f"invalid wire type {wire_type} for field {field} at offset {pos}")


def _read_tag(view: memoryview, pos: int) -> tuple[int, int, int]:
    start = pos
    key, pos = decode_varint(view, pos)
    field = key >> 3
    if not 1 <= field <= MAX_FIELD_NUMBER:
        raise WireError(f"invalid field number {field} at offset {start}")
    return field, key & 7, pos


def _need(view: memoryview, pos: int, length: int, field: int) -> None:
    if pos + length > len(view):
        raise WireError(
            f"truncated field {field}: needs {length} bytes at offset {pos}, "
            f"only {len(view) - pos} left"
        )


def _skip_group(view: memoryview, pos: int, field: int) -> int:
    """Skip a (deprecated) group body whose start tag was just read."""
    stack = [field]
    while stack:
        if len(stack) > _MAX_GROUP_DEPTH:
            raise WireError(f"groups nested deeper than {_MAX_GROUP_DEPTH} at offset {pos}")
        if pos >= len(view):
            raise WireError(f"truncated group {stack[-1]}: no end-group tag")
        inner, wire_type, pos = _read_tag(view, pos)
        if wire_type == VARINT:
            _, pos = decode_varint(view, pos)
        elif wire_type == I64:
            _need(view, pos, 8, inner)
            pos += 8
        elif wire_type == I32:
            _need(view, pos, 4, inner)
            pos += 4
        elif wire_type == LEN:
            length, pos = decode_varint(view, pos)
            _need(view, pos, length, inner)
            pos += length
        elif wire_type == SGROUP:
            stack.append(inner)
        elif wire_type == EGROUP:
            if inner != stack[-1]:
                raise WireError(f"end-group tag {inner} does not match group {stack[-1]}")
            stack.pop()
        else:
            raise WireError(f"invalid wire type {wire_type} for field {inner} at offset {pos}")
    return pos


class Message:
    """A decoded message: typed getters over ``field number -> raw values``.

    Singular getters return the last occurrence (protobuf semantics) or the
    proto3 default when the field is absent; :meth:`message` merges repeated
    occurrences of a nested message the way protobuf does (by concatenation).
    A getter raises :class:`WireError` when the field has the wrong wire type.
    """

    __slots__ = ("_fields",)

    def __init__(self, data: bytes | memoryview = b"") -> None:
        fields: dict[int, list[tuple[int, FieldValue]]] = {}
        for number, wire_type, value in iter_fields(data):
            fields.setdefault(number, []).append((wire_type, value))
        self._fields = fields

    def __contains__(self, field: object) -> bool:
        return field in self._fields

    def __repr__(self) -> str:
        return f"Message(fields={sorted(self._fields)})"

    def fields(self) -> list[int]:
        """Field numbers present, sorted."""
        return sorted(self._fields)

    def raw(self, field: int) -> list[tuple[int, FieldValue]]:
        """All ``(wire type, value)`` occurrences of a field (empty if absent)."""
        return list(self._fields.get(field, ()))

    # internals ----------------------------------------------------------------

    def _last(self, field: int, wire_types: tuple[int, ...], kind: str) -> FieldValue | None:
        values = self._fields.get(field)
        if not values:
            return None
        wire_type, value = values[-1]
        if wire_type not in wire_types:
            raise WireError(f"field {field}: expected {kind}, got wire type {wire_type}")
        return value

    def _last_int(self, field: int, wire_types: tuple[int, ...], kind: str) -> int:
        value = self._last(field, wire_types, kind)
        return value if isinstance(value, int) else 0

    def _last_bytes(self, field: int) -> bytes | None:
        value = self._last(field, (LEN,), "length-delimited")
        return value if isinstance(value, bytes) else None

    # scalars ------------------------------------------------------------------

    def uint(self, field: int) -> int:
        """``uint32``/``uint64`` (unsigned 64-bit value)."""
        return self._last_int(field, (VARINT,), "varint")

    def int64(self, field: int) -> int:
        """``int64`` (two's complement)."""
        return _to_signed(self.uint(field), 64)

    def int32(self, field: int) -> int:
        """``int32``/enum (sign-extended varint, truncated to 32 bits)."""
        return _to_signed(self.uint(field), 32)

    def sint(self, field: int) -> int:
        """``sint32``/``sint64`` (zigzag)."""
        return zigzag_decode(self.uint(field))

    def boolean(self, field: int) -> bool:
        return self.uint(field) != 0

    def fixed32(self, field: int) -> int:
        return self._last_int(field, (I32,), "fixed32")

    def sfixed32(self, field: int) -> int:
        return _to_signed(self.fixed32(field), 32)

    def fixed64(self, field: int) -> int:
        return self._last_int(field, (I64,), "fixed64")

    def sfixed64(self, field: int) -> int:
        return _to_signed(self.fixed64(field), 64)

    def float32(self, field: int) -> float:
        value = self.fixed32(field)
        return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])

    def double(self, field: int) -> float:
        value = self.fixed64(field)
        return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])

    def data(self, field: int) -> bytes:
        return self._last_bytes(field) or b""

    def string(self, field: int) -> str:
        raw = self._last_bytes(field) or b""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"field {field}: invalid UTF-8 in string: {exc.reason}") from None

    def message(self, field: int) -> Message | None:
        """A nested message (``None`` when absent); repeated occurrences are merged."""
        values = self._fields.get(field)
        if not values:
            return None
        parts: list[bytes] = []
        for wire_type, value in values:
            if wire_type != LEN or not isinstance(value, bytes):
                raise WireError(f"field {field}: expected a message, got wire type {wire_type}")
            parts.append(value)
        return Message(b"".join(parts))

    def message_or_empty(self, field: int) -> Message:
        return self.message(field) or Message()

    # repeated -----------------------------------------------------------------

    def repeated_bytes(self, field: int) -> list[bytes]:
        out: list[bytes] = []
        for wire_type, value in self._fields.get(field, ()):
            if wire_type != LEN or not isinstance(value, bytes):
                raise WireError(f"field {field}: expected length-delimited, got {wire_type}")
            out.append(value)
        return out

    def repeated_string(self, field: int) -> list[str]:
        try:
            return [v.decode("utf-8") for v in self.repeated_bytes(field)]
        except UnicodeDecodeError as exc:
            raise WireError(f"field {field}: invalid UTF-8 in string: {exc.reason}") from None

    def repeated_message(self, field: int) -> list[Message]:
        return [Message(v) for v in self.repeated_bytes(field)]

    def repeated_uint(self, field: int) -> list[int]:
        """Repeated varints, accepting both packed and unpacked encodings."""
        out: list[int] = []
        for wire_type, value in self._fields.get(field, ()):
            if wire_type == VARINT and isinstance(value, int):
                out.append(value)
            elif wire_type == LEN and isinstance(value, bytes):
                pos = 0
                while pos < len(value):
                    item, pos = decode_varint(value, pos)
                    out.append(item)
            else:
                raise WireError(f"field {field}: expected varints, got wire type {wire_type}")
        return out

    def repeated_int64(self, field: int) -> list[int]:
        return [_to_signed(v, 64) for v in self.repeated_uint(field)]

    def map_str(self, field: int) -> dict[str, str]:
        """``map<string,string>``; a missing key or value is ``""``, later entries win."""
        out: dict[str, str] = {}
        for entry in self.repeated_message(field):
            out[entry.string(1)] = entry.string(2)
        return out
