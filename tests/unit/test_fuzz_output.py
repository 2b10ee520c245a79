"""Output from traced processes is hostile: a process picks its own command
name (prctl PR_SET_NAME), paths and buffers. For any bytes there, through the
native decoder, the text line holds no raw control character (C0, DEL, C1:
a terminal reads U+009B as CSI) and the JSON document is valid UTF-8 JSON
that round-trips."""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syshub import probe as syshub_probe
from syshub import syscalls

LAYOUT = syshub_probe.abi_layout()["syshub_event"]
HDR = LAYOUT["__size__"][1]
CAP_STR, CAP_BUF, CAP_STRV, CAP_STRV_END = 1, 2, 4, 5


def _capture(slot: int, kind: int, data: bytes, index: int = 0) -> bytes:
    c = struct.pack("<BBHIII", slot, kind, 0, len(data), len(data), index) + data
    return c + b"\0" * (-len(c) % 8)


def _record(nr: int, comm: bytes, caps: list[bytes], args: tuple[int, ...] = ()) -> bytes:
    body = b"".join(caps)
    hdr = bytearray(HDR)
    struct.pack_into("<HHII", hdr, 0, 1, 0, HDR + len(body), nr)
    struct.pack_into("<H", hdr, LAYOUT["ncaptures"][0], len(caps))
    struct.pack_into("<q", hdr, LAYOUT["ret"][0], 3)
    for i, a in enumerate(args):
        struct.pack_into("<Q", hdr, LAYOUT["args"][0] + 8 * i, a & (2**64 - 1))
    hdr[LAYOUT["comm"][0] : LAYOUT["comm"][0] + 16] = comm[:16].ljust(16, b"\0")
    return bytes(hdr) + body


def _bad_char(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for k, x in v.items() for s in (*_strings(k), *_strings(x))]
    if isinstance(v, list | tuple):
        return [s for x in v for s in _strings(x)]
    return []


def check_output(rec: bytes) -> None:
    ev = syshub_probe.decode_record(rec)
    text = ev.to_text()
    bad = [c for c in text if _bad_char(c)]
    assert not bad, f"raw control characters {bad!r} in {text!r}"
    doc = ev.to_dict()
    blob = json.dumps(doc, ensure_ascii=False).encode("utf-8")  # no lone surrogates
    assert json.loads(blob.decode("utf-8")) == json.loads(json.dumps(doc))
    for s in _strings(doc):
        s.encode("utf-8")


hostile = st.binary(min_size=0, max_size=200) | st.sampled_from(
    [b"\x1b[31mred", b"\x9b2J", b"\xc2\x9b1m", b"\xff\xfe", b"\xed\xa0\x80", b"a\nb\r\0c", b"\\"]
)


@settings(max_examples=500, deadline=None)
@given(comm=st.binary(min_size=0, max_size=16), path=hostile)
def test_openat_path_and_comm(comm: bytes, path: bytes) -> None:
    nr = syscalls.lookup("openat").nr
    check_output(_record(nr, comm, [_capture(1, CAP_STR, path)], (-100, 0, 0)))


@settings(max_examples=500, deadline=None)
@given(comm=st.binary(min_size=0, max_size=16), buf=hostile)
def test_write_buffer(comm: bytes, buf: bytes) -> None:
    nr = syscalls.lookup("write").nr
    check_output(_record(nr, comm, [_capture(1, CAP_BUF, buf)], (1, 0, len(buf))))


@settings(max_examples=300, deadline=None)
@given(comm=st.binary(max_size=16), path=hostile, argv=st.lists(hostile, max_size=5))
def test_execve_argv(comm: bytes, path: bytes, argv: list[bytes]) -> None:
    nr = syscalls.lookup("execve").nr
    caps = [_capture(0, CAP_STR, path)]
    caps += [_capture(1, CAP_STRV, a, i) for i, a in enumerate(argv)]
    caps.append(_capture(1, CAP_STRV_END, b"", len(argv)))
    check_output(_record(nr, comm, caps))


def test_escapes_known_controls() -> None:
    nr = syscalls.lookup("openat").nr
    ev = syshub_probe.decode_record(
        _record(nr, b"\x1b]0;x\x07", [_capture(1, CAP_STR, b"\x1b[2J\xc2\x9b\n")], (-100,))
    )
    text = ev.to_text()
    assert "\x1b" not in text and "\x9b" not in text and "\n" not in text
    assert "\\33" in text and "\\n" in text
    doc = ev.to_dict()
    json.dumps(doc, ensure_ascii=False).encode("utf-8")
