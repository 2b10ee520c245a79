"""Watch streams: one bounded Hub subscription per stream, drained into
WatchResponse messages by the stream's own gRPC thread.

The Hub's reader never waits for a stream: a stream whose client reads slowly
fills its own queue and loses (and counts) only its own events. Its counters
travel in every message; the last message (``final``) carries them once the
queue is empty, so ``matched == delivered + dropped`` there. A client that
goes away ends the stream at once (gRPC's cancel callback closes the
subscription; the loop waits at most ``POLL`` s for it)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc

from syshub.agent.requests import RequestError
from syshub.hub import Subscription
from syshub.hub.batches import encode_chunks
from syshub.v1 import agent_pb2 as pb

POLL: Final = 0.2
"""How long a stream waits for events before it checks its client and its end."""

LINGER: Final = 0.004
"""When a pull finds less than a quarter of what a message may hold, it waits
this long (s) once for more: fewer, fuller messages (less work per message on
both sides, fewer wake-ups) for at most this much more latency."""

_dumps = json.JSONEncoder(separators=(",", ":")).encode

FORMAT_NAMES: Final[dict[int, str]] = {
    int(pb.EVENT_FORMAT_JSON): "json",
    int(pb.EVENT_FORMAT_TEXT): "text",
    int(pb.EVENT_FORMAT_PROTO): "proto",
    int(pb.EVENT_FORMAT_RECORDS): "records",
}


def encode_json(events: Sequence[Any]) -> bytes:
    """JSON lines: each exactly the event's ``to_dict()`` document."""
    return "".join([_dumps(ev.to_dict()) + "\n" for ev in events]).encode()


def encode_text(events: Sequence[Any]) -> bytes:
    return "".join([ev.to_text() + "\n" for ev in events]).encode()


#: format -> (WatchResponse field number, encoder of a batch of TraceEvents)
Encoder = Callable[[Sequence[Any]], bytes]
ENCODERS: dict[int, tuple[int, Encoder]] = {
    pb.EVENT_FORMAT_JSON: (pb.WatchResponse.JSON_LINES_FIELD_NUMBER, encode_json),
    pb.EVENT_FORMAT_TEXT: (pb.WatchResponse.TEXT_LINES_FIELD_NUMBER, encode_text),
}
Message = Callable[[bytes], bytes]
"""Completes a WatchResponse: given its serialized head (node, count,
counters), the whole serialized message with the events."""
#: Pulls up to n events (waiting up to timeout s for the first): (count, message maker).
Pull = Callable[[int, float], tuple[int, Message]]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(field: int, payload: bytes) -> bytes:
    """``payload`` as length-delimited field ``field`` of a message: appended
    to a serialized message it sets that field (bytes, or an embedded message
    such as an EventBatch encoded in Rust) without parsing it again."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _no_events(head: bytes) -> bytes:
    return head


def python_pull(sub: Subscription, encode: Encoder, field: int) -> Pull:
    """Events as Python objects from a Subscription, encoded by ``encode``."""

    def pull(n: int, timeout: float) -> tuple[int, Message]:
        events = sub.get_batch(n, timeout=timeout)
        if not events:
            return 0, _no_events
        payload = encode(events)
        return len(events), lambda head: head + frame(field, payload)

    return pull


#: WatchRequest format -> (encoder name of hub.batches.encode_chunks, WatchResponse field)
CHUNK_FORMATS: Final[dict[int, tuple[str, int]]] = {
    int(pb.EVENT_FORMAT_JSON): ("json", pb.WatchResponse.JSON_LINES_FIELD_NUMBER),
    int(pb.EVENT_FORMAT_TEXT): ("text", pb.WatchResponse.TEXT_LINES_FIELD_NUMBER),
    int(pb.EVENT_FORMAT_PROTO): ("proto", pb.WatchResponse.BATCH_FIELD_NUMBER),
    int(pb.EVENT_FORMAT_RECORDS): ("records", pb.WatchResponse.BATCH_FIELD_NUMBER),
}


def chunk_pull(sub: Any, fmt: int, node: str) -> tuple[int, Pull]:
    """(field, puller) for a Hub batch subscription (``get_chunks``): the
    chunks a pull takes are encoded in Rust in one call, straight into the
    whole serialized WatchResponse (one copy of the events' bytes), never as
    Python objects per event."""
    name, field = CHUNK_FORMATS.get(fmt, CHUNK_FORMATS[int(pb.EVENT_FORMAT_JSON)])
    proto_node = node if name in ("proto", "records") else None

    def pull(n: int, timeout: float) -> tuple[int, Message]:
        chunks = sub.get_chunks(max_events=n, timeout=timeout)
        if not chunks:
            return 0, _no_events
        got = sum(len(c) for c in chunks)
        if got < n // 4 and not sub.closed:
            time.sleep(LINGER)
            chunks += sub.get_chunks(max_events=n - got, timeout=0)

        def message(head: bytes) -> bytes:
            return encode_chunks(chunks, name, node=proto_node, field=field, prefix=head)

        return sum(len(c) for c in chunks), message

    return field, pull


@dataclass(frozen=True, slots=True)
class StreamStats:
    id: str
    source: str
    peer: str
    format: str
    matched: int
    delivered: int
    dropped: int
    queued: int


class Stream:
    """One Watch call: its subscription, its counters, its messages."""

    def __init__(
        self,
        stream_id: str,
        source: str,
        peer: str,
        fmt: int,
        sub: Subscription,
        max_batch: int,
        node: str,
        pull: tuple[int, Pull] | None = None,
    ) -> None:
        """``pull``: (WatchResponse field, puller); default: the Subscription's
        Python events encoded by :data:`ENCODERS`."""
        if pull is None:
            if fmt not in ENCODERS:
                raise RequestError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"format: {FORMAT_NAMES.get(fmt, fmt)} is not served by this agent yet",
                )
            field, encode = ENCODERS[fmt]
            pull = (field, python_pull(sub, encode, field))
        self.id = stream_id
        self.source = source
        self.peer = peer
        self.format = fmt
        self.sub = sub
        self.max_batch = max_batch
        self.node = node
        self.field, self.pull = pull
        self.end_reason = "trace ended"
        self.cancelled = False

    def cancel(self) -> None:
        """The client went away (gRPC's callback): end without a final message."""
        self.cancelled = True
        self.sub.close()

    def end(self, reason: str) -> None:
        """End the stream: what is queued is still sent, then the final message."""
        self.end_reason = reason
        self.sub.close()

    def stats(self) -> StreamStats:
        s = self.sub.stats()
        return StreamStats(
            self.id,
            self.source,
            self.peer,
            FORMAT_NAMES.get(self.format, str(self.format)),
            s.delivered + s.dropped + s.queued,
            s.delivered,
            s.dropped,
            s.queued,
        )

    def counters(self) -> pb.StreamCounters:
        s = self.stats()
        return pb.StreamCounters(
            matched=s.matched, delivered=s.delivered, dropped=s.dropped, queued=s.queued
        )

    def messages(self, active: Callable[[], bool]) -> Iterator[bytes]:
        """Serialized WatchResponse messages until the subscription is closed
        and drained (then the final one), the client goes away or
        ``active()`` turns False."""
        sub = self.sub
        while True:
            n, message = self.pull(self.max_batch, POLL)
            if self.cancelled:
                return
            if n:
                head = pb.WatchResponse(node=self.node, count=n, counters=self.counters())
                yield message(head.SerializeToString())
                continue
            if sub.closed and sub.qsize() == 0:
                last = pb.WatchResponse(
                    node=self.node, counters=self.counters(), final=True, end_reason=self.end_reason
                )
                yield last.SerializeToString()
                return
            if not active():
                return


class StreamRegistry:
    """The open streams (for Stats, shutdown and the stream limit)."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._streams: dict[str, Stream] = {}
        self._ids = itertools.count(1)
        self._stopping: str | None = None

    def next_id(self) -> str:
        return f"s{next(self._ids)}"

    def add(self, stream: Stream) -> None:
        with self._lock:
            if self._stopping is not None:
                stream.end(self._stopping)
            elif len(self._streams) >= self.max_streams:
                stream.sub.close()
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many streams: this agent serves at most {self.max_streams}",
                )
            self._streams[stream.id] = stream

    def remove(self, stream: Stream) -> None:
        stream.sub.close()
        with self._lock:
            self._streams.pop(stream.id, None)

    def streams(self) -> list[Stream]:
        with self._lock:
            return list(self._streams.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)

    def stop_all(self, reason: str) -> None:
        """Every stream (and any opened later) ends with ``reason`` once drained."""
        with self._lock:
            self._stopping = reason
            streams = list(self._streams.values())
        for s in streams:
            s.end_reason = reason

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every stream ended; True if they did."""
        end = time.monotonic() + timeout
        while len(self) and time.monotonic() < end:
            time.sleep(0.02)
        return not len(self)
