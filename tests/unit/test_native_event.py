"""Event documents and text through the native decoder, with hand-built
records: to_dict carries tgid/ns_pid/errno, and to_text escapes what the
traced process controls (its comm, its strings) the way strace does."""

from __future__ import annotations

import struct

from syshub import _native

LAYOUT = _native.abi_layout()["syshub_event"]
HDR_SIZE = LAYOUT["__size__"][1]
CAP_STR = 1
EVF_NO_EXIT = 0x1


def _put(hdr: bytearray, field: str, fmt: str, value: int | bytes) -> None:
    struct.pack_into(fmt, hdr, LAYOUT[field][0], value)


def _record(
    nr: int,
    *,
    ret: int = 0,
    comm: bytes = b"cat",
    strings: dict[int, bytes] | None = None,
    args: dict[int, int] | None = None,
    flags: int = 0,
) -> bytes:
    """A record of syscall ``nr``: header fields, raw registers and string
    captures by argument slot."""
    body = b""
    for slot, data in (strings or {}).items():
        body += struct.pack("<BBHIII", slot, CAP_STR, 0, len(data), len(data), 0) + data
        body += b"\0" * (-len(body) % 8)
    hdr = bytearray(HDR_SIZE)
    struct.pack_into("<HHII", hdr, 0, 1, flags, HDR_SIZE + len(body), nr)
    _put(hdr, "ncaptures", "<H", len(strings or {}))
    _put(hdr, "tgid", "<I", 4242)
    _put(hdr, "tid", "<I", 4243)
    _put(hdr, "ns_tgid", "<I", 7)
    _put(hdr, "ns_tid", "<I", 8)
    _put(hdr, "ret", "<q", ret)
    _put(hdr, "comm", "16s", comm)
    for slot, value in (args or {}).items():
        struct.pack_into("<Q", hdr, LAYOUT["args"][0] + 8 * slot, value & (2**64 - 1))
    return bytes(hdr) + body


def _openat(path: bytes, *, comm: bytes = b"cat", ret: int = 3) -> _native.Event:
    return _native.decode_record(
        _record(257, ret=ret, comm=comm, strings={1: path}, args={0: -100})
    )


def test_to_dict_has_tgid_ns_pid_and_errno() -> None:
    d = _openat(b"/etc/hostname").to_dict()
    assert (d["pid"], d["tgid"], d["tid"]) == (4242, 4242, 4243)
    assert (d["container_pid"], d["ns_pid"], d["container_tid"]) == (7, 7, 8)
    assert (d["errno"], d["error"], d["return"]) == (None, "OK", 3)
    failed = _openat(b"/nope", ret=-2).to_dict()
    assert (failed["errno"], failed["error"], failed["return"]) == (2, "ENOENT", -2)


def test_to_dict_errno_is_none_for_calls_that_never_return() -> None:
    ev = _native.decode_record(_record(231, flags=EVF_NO_EXIT, args={0: 1}))
    d = ev.to_dict()
    assert ev.syscall == "exit_group"
    assert (d["errno"], d["return"]) == (None, None)


def test_to_text_escapes_a_terminal_sequence_in_comm() -> None:
    text = _openat(b"/etc/hostname", comm=b"\x1b]0;pwned\x07x").to_text()
    assert text.startswith(r"\33]0;pwned\7x[4242] openat(AT_FDCWD, ")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def test_to_text_escapes_strings_as_strace_does() -> None:
    path = b'/tmp/a\tb\nc\x0bd\x0ce\rf"g\\h\x1b1\x1b[\xff\xc3\xa9'
    text = _openat(path).to_text()
    assert r'"/tmp/a\tb\nc\vd\fe\rf\"g\\h\0331\33[\377é"' in text
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def test_every_byte_value_is_printable_in_text() -> None:
    text = _openat(bytes(range(1, 256)), comm=bytes(range(1, 16))).to_text()
    assert text.isprintable()
