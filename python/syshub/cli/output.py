"""Where ``syshub trace`` writes events: text (strace-style) or JSON lines,
to stderr (default), stdout (``-o -``) or a file. The JSON line of an event is
exactly its ``to_dict()`` (the one event document); nothing is added here.
Write failures raise :class:`OutputError` (one line, exit status 1)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from syshub.cli.errors import BrokenOutput, OutputError


class Event(Protocol):
    def to_text(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def json_line(ev: Event) -> str:
    """The JSON line of an event: its ``to_dict()``, compact, ASCII (control
    characters are escaped)."""
    return _dumps(ev.to_dict())


def text_line(ev: Event) -> str:
    return ev.to_text()


FORMATS: dict[str, Callable[[Event], str]] = {"text": text_line, "json": json_line}


def open_output(path: str | None) -> tuple[IO[str], str]:
    """The stream for ``-o``: stderr (None), stdout (``-``) or a new file;
    returns it and its name for messages."""
    if path is None:
        return sys.stderr, "stderr"
    if path == "-":
        return sys.stdout, "stdout"
    try:
        return open(path, "w", encoding="utf-8", buffering=1 << 16), path
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


class EventWriter:
    """Writes batches of events and counts the ones written. Once the reader
    of the output is gone (EPIPE), later batches are discarded, uncounted here
    (the summary shows them as dropped (output))."""

    def __init__(self, out: IO[str], name: str, fmt: str) -> None:
        self.out = out
        self.name = name
        self.line = FORMATS[fmt]
        self.printed = 0
        self.broken = False

    def write(self, events: Sequence[Event]) -> None:
        """Write and flush a batch (counted once the stream took it); raises
        :class:`BrokenOutput` the first time the reader is found gone."""
        if not events or self.broken:
            return
        line = self.line
        text = "\n".join([line(ev) for ev in events]) + "\n"
        try:
            self.out.write(text)
            self.out.flush()
        except OSError as e:
            err = io_error(self.name, e)
            self.broken = isinstance(err, BrokenOutput)
            raise err from None
        self.printed += len(events)

    def close(self) -> None:
        """Flush; close a file (never stdout/stderr)."""
        if self.broken:
            silence_std_streams()
            return
        try:
            self.out.flush()
            if self.out not in (sys.stdout, sys.stderr):
                self.out.close()
        except OSError as e:
            raise io_error(self.name, e) from None
