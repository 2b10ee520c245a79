"""Requests to an agent and its answers as plain values, for both clients."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from syshub.v1 import agent_pb2 as pb
from syshub.v1 import event_pb2

FORMATS: Final = {
    "json": pb.EVENT_FORMAT_JSON,
    "text": pb.EVENT_FORMAT_TEXT,
    "proto": pb.EVENT_FORMAT_PROTO,
    "records": pb.EVENT_FORMAT_RECORDS,
}


@dataclass(frozen=True, slots=True)
class StreamCounters:
    """A stream's own accounting: matched = delivered + dropped + queued."""

    matched: int = 0
    delivered: int = 0
    dropped: int = 0
    queued: int = 0

    @staticmethod
    def of(m: pb.StreamCounters) -> StreamCounters:
        return StreamCounters(m.matched, m.delivered, m.dropped, m.queued)


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """One message of a Watch stream: its events and the stream's counters.

    ``events`` holds the event documents (exactly ``TraceEvent.to_dict()`` of
    the agent's events, through JSON) for the json and records formats;
    ``lines`` the raw lines (json or text, without their newline; records:
    the JSON lines)."""

    node: str
    counters: StreamCounters
    final: bool = False
    end_reason: str = ""
    lines: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    agent: str = ""
    batch: Any = None
    """The ``syshub.v1.EventBatch`` message (format "proto"); ``events`` then
    holds its protobuf JSON mapping, not the ``to_dict()`` document."""
    records: Records | None = None
    """Format "records": the events as the agent's probe read them."""


@dataclass(frozen=True, slots=True)
class Records:
    """The events of a records-form EventBatch: ``batch`` is a
    :class:`syshub.probe.Batch` (``len``, columns such as ``column("seq")``,
    iteration for :class:`syshub.probe.Event` s, the Rust encoders), as a
    :meth:`syshub.probe.Probe.poll` would return it on the agent's node, and
    ``containers`` the container document of each pid namespace
    (``Container.to_dict()``)."""

    batch: Any
    containers: dict[int, dict[str, object] | None]

    def __len__(self) -> int:
        return len(self.batch)

    def json_lines(self) -> bytes:
        """JSON lines, each exactly the agent's ``TraceEvent.to_dict()``."""
        from syshub.probe import encode_json

        return encode_json(self.batch, None, self.containers)


class RecordsError(ValueError):
    """A records-form batch this client cannot decode."""


def records_of(b: event_pb2.EventBatch) -> Records:
    """Decode a records-form EventBatch, its records packed (what agents
    send) or not (ValueError when malformed, or
    :class:`RecordsError` when the agent's record ABI is not this client's)."""
    from syshub.probe import ABI_VERSION, decode_records, unpack_records

    if b.records_abi != ABI_VERSION:
        raise RecordsError(
            f"records: the agent sends record ABI {b.records_abi}, this client decodes "
            f"{ABI_VERSION}; watch with format proto or json"
        )
    batch = unpack_records(b.packed_records) if b.packed_records else decode_records(b.records)
    if len(batch) != b.count:
        raise RecordsError(f"records: {len(batch)} records where the batch says {b.count}")
    containers: dict[int, dict[str, object] | None] = {
        ns: json.loads(doc) for ns, doc in b.containers.items()
    }
    return Records(batch, containers)


def watch_batch(msg: pb.WatchResponse, parse: bool, agent: str) -> WatchBatch:
    which = msg.WhichOneof("events")
    batch = msg.batch if which == "batch" else None
    lines: list[str] = []
    events: list[dict[str, Any]] = []
    records = None
    if batch is not None and (batch.records or batch.records_abi):
        records = records_of(batch)
        batch = None
        lines = records.json_lines().decode("utf-8", "replace").splitlines()
        if parse:
            events = [json.loads(line) for line in lines]
    elif which in ("json_lines", "text_lines"):
        raw: bytes = getattr(msg, which)
        lines = raw.decode("utf-8", "replace").splitlines()
        if parse and which == "json_lines":
            events = [json.loads(line) for line in lines]
    elif which == "batch":
        from google.protobuf.json_format import MessageToDict

        events = [MessageToDict(ev) for ev in msg.batch.events]
        lines = [json.dumps(ev, separators=(",", ":")) for ev in events]
    return WatchBatch(
        node=msg.node,
        counters=StreamCounters.of(msg.counters),
        final=msg.final,
        end_reason=msg.end_reason,
        lines=lines,
        events=events,
        agent=agent,
        batch=batch,
        records=records,
    )


def manifest_text(manifest: str | os.PathLike[str]) -> str:
    """A manifest given as text or as a path."""
    if isinstance(manifest, os.PathLike):
        return Path(manifest).read_text(encoding="utf-8")
    return manifest


def create_request(
    manifest: str | os.PathLike[str],
    *,
    pid: int | None = None,
    namespace_of: int | None = None,
    host: bool = False,
    wait_applied: float = 0.0,
    str_max: int = 0,
    argv_max: int = 0,
    buf_max: int = 0,
    durations: bool = False,
) -> pb.CreateTraceRequest:
    req = pb.CreateTraceRequest(
        manifest=manifest_text(manifest),
        wait_applied_seconds=wait_applied,
        capture=pb.Capture(
            str_max=str_max, argv_max=argv_max, buf_max=buf_max, durations=durations
        ),
    )
    if pid is not None:
        req.target.pid = pid
    elif namespace_of is not None:
        req.target.namespace_of = namespace_of
    elif host:
        req.target.host = True
    return req


def watch_request(
    name: str | None,
    namespace: str,
    path: str | None,
    fmt: str,
    queue: int,
    max_batch: int,
) -> pb.WatchRequest:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if (name is None) == (path is None):
        raise ValueError("watch: give a trace name or a path, not both")
    req = pb.WatchRequest(format=FORMATS[fmt], queue=queue, max_batch=max_batch)
    if name is not None:
        req.trace.name = name
        req.trace.namespace = namespace
    else:
        req.path = path or ""
    return req
