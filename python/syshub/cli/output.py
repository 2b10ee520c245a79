"""Where ``syshub trace`` writes events: text (strace-style), JSON lines (the
one event document, exactly each event's ``to_dict()``) or swoll's event JSON,
to stderr (default), stdout (``-``) or a file.

text and JSON lines are encoded in Rust from the Hub's chunks (a poll batch
and the selected events: no Python object per event) and, to a file
descriptor, written from Rust too (no bytes object); swoll-json goes per
event through ``to_dict(style="swoll")``. Write failures raise
:class:`OutputError` (one line, exit status 1)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from syshub.cli.errors import BrokenOutput, OutputError
from syshub.hub.batches import write_chunks

if TYPE_CHECKING:
    from syshub.hub.subscriptions import EventChunk


class Event(Protocol):
    def to_text(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def json_line(ev: Event) -> str:
    """The JSON line of one event object: its ``to_dict()``, compact, ASCII
    (control characters escaped); what ``EventChunk.to_json()`` writes in
    Rust for each event."""
    return _dumps(ev.to_dict())


def swoll_json(chunk: EventChunk) -> bytes:
    """swoll's event document per line (``to_dict(style="swoll")``)."""
    return "".join([_dumps(ev.to_dict(style="swoll")) + "\n" for ev in chunk.events()]).encode()


ENCODERS: dict[str, Callable[[EventChunk], bytes]] = {
    "text": lambda c: c.to_text(),
    "json": lambda c: c.to_json(),
    "swoll-json": swoll_json,
}


def open_output(path: str | None) -> tuple[IO[bytes], str, IO[str] | None]:
    """The stream for the events: stderr (None), stdout (``-``) or a new
    file; returns it (binary), its name for messages, and the text stream
    over it for stdout/stderr (flushed before events are written, so lines
    written as text stay in order)."""
    if path is None:
        return sys.stderr.buffer, "stderr", sys.stderr
    if path == "-":
        return sys.stdout.buffer, "stdout", sys.stdout
    try:
        return open(path, "wb", buffering=1 << 16), path, None
    except OSError as e:
        raise OutputError(f"cannot open output file {path!r}: {e.strerror}") from None


def io_error(name: str, e: OSError) -> OutputError:
    if e.errno == errno.EPIPE:
        return BrokenOutput(f"output {name} closed (broken pipe)")
    return OutputError(f"cannot write to {name}: {e.strerror or e}")


def silence_std_streams() -> None:
    """After a failed write to stdout/stderr, point them at /dev/null so the
    interpreter's own final flush is harmless (no 'Exception ignored' noise)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
            continue
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _fileno(out: IO[bytes]) -> int | None:
    """The descriptor under ``out`` (None for an in-memory stream)."""
    try:
        return out.fileno()
    except (OSError, ValueError, AttributeError):
        return None


class EventWriter:
    """Writes chunks of events and counts the events written. Once the reader
    of the output is gone (EPIPE), later chunks are discarded, uncounted here
    (the summary shows them as dropped (output))."""

    def __init__(self, out: IO[bytes], name: str, fmt: str, text: IO[str] | None = None) -> None:
        self.out = out
        self.name = name
        self.text = text
        self.encode = ENCODERS[fmt]
        self.fmt = fmt
        self.fd = _fileno(out) if fmt in ("json", "text") else None
        self.printed = 0
        self.broken = False

    def write(self, chunks: Sequence[EventChunk]) -> None:
        """Write and flush chunks (counted once the stream took them); raises
        :class:`BrokenOutput` the first time the reader is found gone."""
        n = sum(len(c) for c in chunks)
        if not n or self.broken:
            return
        try:
            if self.text is not None:
                self.text.flush()
            if self.fd is not None:
                # Rust encodes and writes to the descriptor: no bytes object.
                self.out.flush()
                if write_chunks(self.fd, chunks, self.fmt):
                    self.printed += n
                    return
            self.out.write(b"".join([self.encode(c) for c in chunks]))
            self.out.flush()
        except OSError as e:
            err = io_error(self.name, e)
            self.broken = isinstance(err, BrokenOutput)
            raise err from None
        self.printed += n

    def close(self) -> None:
        """Flush; close a file (never stdout/stderr)."""
        if self.broken:
            silence_std_streams()
            return
        try:
            self.out.flush()
            if self.text is None:
                self.out.close()
        except OSError as e:
            raise io_error(self.name, e) from None
