"""Several Hub chunks encoded in one Rust call (``hub.batches.encode_chunks``,
``write_chunks``) and the records form of an EventBatch (raw probe records +
containers, decoded by the client with the same decoder): each output equals
the per-chunk encoders' output, a records batch read back gives the same JSON
lines, the CLI's writer writes through the file descriptor, and malformed or
foreign-ABI records are one-line errors."""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile

import pytest
from test_encode import CONTAINER, NS_A, NS_B, records

from syshub.cli.output import EventWriter
from syshub.client.messages import RecordsError, records_of, watch_batch
from syshub.hub.batches import encode_chunks, write_chunks
from syshub.hub.events import TraceEvent
from syshub.hub.subscriptions import EventChunk
from syshub.probe import ABI_VERSION, Batch, decode_records, unpack_records
from syshub.v1 import agent_pb2, event_pb2


@pytest.fixture
def chunks() -> list[EventChunk]:
    b = Batch.from_records(records())
    n = len(b)
    return [
        EventChunk(b, ((0, 3), (5, 9)), {NS_A: CONTAINER}),
        EventChunk(b, ((9, n),), {NS_A: CONTAINER, NS_B: None}),
    ]


def _joined(chunks: list[EventChunk], fmt: str) -> bytes:
    if fmt == "json":
        return b"".join(c.to_json(node="n1") for c in chunks)
    return b"".join(c.to_text() for c in chunks)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_one_call_equals_the_chunks_encoded_one_by_one(chunks: list[EventChunk], fmt: str) -> None:
    node = "n1" if fmt == "json" else None
    assert encode_chunks(chunks, fmt, node=node) == _joined(chunks, fmt)


def test_a_framed_output_is_the_field_of_a_whole_message(chunks: list[EventChunk]) -> None:
    head = agent_pb2.WatchResponse(node="n1", count=13).SerializeToString()
    field = agent_pb2.WatchResponse.JSON_LINES_FIELD_NUMBER
    msg = agent_pb2.WatchResponse.FromString(
        encode_chunks(chunks, "json", field=field, prefix=head)
    )
    assert (msg.node, msg.count) == ("n1", 13)
    assert msg.json_lines == b"".join(c.to_json() for c in chunks)
    proto = agent_pb2.WatchResponse.FromString(
        encode_chunks(chunks, "proto", node="n1", field=8, prefix=head)
    )
    assert len(proto.batch.events) == sum(len(c) for c in chunks)
    assert proto.batch.node == "n1"


def test_records_form_reads_back_as_the_same_events(chunks: list[EventChunk]) -> None:
    data = encode_chunks(chunks, "records", node="n1")
    b = event_pb2.EventBatch.FromString(data)
    n = sum(len(c) for c in chunks)
    assert (b.count, b.records_abi, b.node, len(b.events)) == (n, ABI_VERSION, "n1", 0)
    # Only namespaces with a known container are sent (NS_B's is None).
    assert set(b.containers) == {NS_A}
    rec = records_of(b)
    assert len(rec) == n
    assert rec.containers[NS_A] == CONTAINER.to_dict()
    assert rec.json_lines() == b"".join(c.to_json() for c in chunks)
    seqs = [ev.seq for c in chunks for ev in c.events()]
    assert memoryview(rec.batch.column("seq")).tolist() == seqs
    # The records are the probe's own bytes: raw() of each event is the same.
    src = [c.batch.raw(i) for c in chunks for i in c.indexes()]
    assert [rec.batch.raw(i) for i in range(n)] == src


def test_client_watch_batch_yields_the_to_dict_documents(chunks: list[EventChunk]) -> None:
    head = agent_pb2.WatchResponse(node="n1", count=13).SerializeToString()
    msg = agent_pb2.WatchResponse.FromString(
        encode_chunks(chunks, "records", node="n1", field=8, prefix=head)
    )
    wb = watch_batch(msg, True, "unix:///x")
    docs = [
        TraceEvent(c.batch[i], c.containers.get(c.batch[i].pid_ns)).to_dict()
        for c in chunks
        for i in c.indexes()
    ]
    assert wb.records is not None and wb.batch is None
    assert wb.events == docs
    assert len(wb.lines) == len(docs)


def test_chunks_of_event_objects_encode_json_and_text_only(chunks: list[EventChunk]) -> None:
    c = chunks[0]
    objs = EventChunk([c.batch[i] for i in range(3)], ((0, 3),), {NS_A: CONTAINER})
    assert encode_chunks([objs], "json") == EventChunk(c.batch, ((0, 3),), c.containers).to_json()
    assert encode_chunks([objs], "text", field=7).endswith(c.head(3).to_text())
    with tempfile.TemporaryFile() as f:
        assert not write_chunks(f.fileno(), [objs], "json")
    with pytest.raises(TypeError, match="records"):
        encode_chunks([objs], "records")


def _raw_records(chunks: list[EventChunk]) -> bytes:
    """The records field as it was sent before packing: each record 8-byte aligned."""
    raws = [c.batch.raw(i) for c in chunks for i in c.indexes()]
    return b"".join(r + b"\0" * (-len(r) % 8) for r in raws)


def test_unpacked_records_field_still_decodes(chunks: list[EventChunk]) -> None:
    b = event_pb2.EventBatch.FromString(encode_chunks(chunks, "records"))
    assert b.packed_records and not b.records
    raw = event_pb2.EventBatch(
        records=_raw_records(chunks), records_abi=b.records_abi, count=b.count
    )
    raw.containers.update(b.containers)
    assert records_of(raw).json_lines() == records_of(b).json_lines()


def test_malformed_and_foreign_records_are_one_line_errors(chunks: list[EventChunk]) -> None:
    b = event_pb2.EventBatch.FromString(encode_chunks(chunks, "records"))
    raw = _raw_records(chunks)
    with pytest.raises(ValueError, match=r"^record 0 at byte 0: size \d+ does not fit"):
        decode_records(raw[:100])
    with pytest.raises(ValueError, match="truncated header"):
        decode_records(raw + b"\x01\x00")
    bad = bytearray(raw)
    bad[0] = 9  # record kind
    with pytest.raises(ValueError, match=r"^record 0 is malformed"):
        decode_records(bytes(bad))
    with pytest.raises(ValueError, match=r"^packed record \d+ at byte \d+: truncated"):
        unpack_records(b.packed_records[:-1])
    bad = bytearray(b.packed_records)
    bad[0] ^= 2  # word 0's delta: the first record's kind
    with pytest.raises(ValueError, match=r"^record 0 is malformed"):
        unpack_records(bytes(bad))
    b.records_abi = ABI_VERSION + 1
    with pytest.raises(RecordsError, match="record ABI"):
        records_of(b)
    with pytest.raises(ValueError, match="format must be"):
        encode_chunks(chunks, "xml")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_write_chunks_writes_from_rust_to_the_descriptor(
    chunks: list[EventChunk], fmt: str
) -> None:
    with tempfile.TemporaryFile() as f:
        assert write_chunks(f.fileno(), chunks, fmt)
        f.seek(0)
        assert f.read() == encode_chunks(chunks, fmt)
    r, w = os.pipe()
    os.close(r)
    with pytest.raises(BrokenPipeError) as err:
        write_chunks(w, chunks, fmt)
    assert (err.value.errno, err.value.strerror) == (errno.EPIPE, os.strerror(errno.EPIPE))
    os.close(w)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_write_chunks_of_many_events_write_them_all_in_order(fmt: str) -> None:
    # More events than one write(2) piece (512), over several chunks.
    b = Batch.from_records(records() * 150)
    n = len(b)
    containers = {NS_A: CONTAINER, NS_B: None}
    many = [
        EventChunk(b, ((0, 700), (710, n - 5)), containers),
        EventChunk(b, ((3, 1300),), containers),
    ]
    with tempfile.TemporaryFile() as f:
        assert write_chunks(f.fileno(), many, fmt)
        f.seek(0)
        data = f.read()
    assert data == encode_chunks(many, fmt) == _joined_plain(many, fmt)
    assert data.count(b"\n") == sum(len(c) for c in many)


def _joined_plain(chunks: list[EventChunk], fmt: str) -> bytes:
    if fmt == "json":
        return b"".join(c.to_json() for c in chunks)
    return b"".join(c.to_text() for c in chunks)


def test_the_cli_writer_goes_through_the_descriptor_in_order(chunks: list[EventChunk]) -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"header\n")  # still in Python's buffer: flushed first
        w = EventWriter(f, "file", "json")
        assert w.fd == f.fileno()
        w.write(chunks)
        w.write(chunks[:1])
        f.seek(0)
        want = b"header\n" + encode_chunks(chunks, "json") + chunks[0].to_json()
        assert f.read() == want
        assert w.printed == sum(len(c) for c in chunks) + len(chunks[0])
    mem = io.BytesIO()
    w = EventWriter(mem, "memory", "text")
    assert w.fd is None
    w.write(chunks)
    assert mem.getvalue() == encode_chunks(chunks, "text")


def test_json_lines_of_alternating_threads_and_namespaces() -> None:
    """The JSON encoder copies the process and namespace fields of the last
    event when they repeat: every switch of thread, comm or namespace must
    still give each event its own."""
    from test_encode import record

    recs = []
    for i, (comm, ns) in enumerate(
        [(b"a", NS_A), (b"a", NS_A), (b"b", NS_A), (b"b", NS_B), (b"a", NS_B), (b"a", NS_A)]
    ):
        recs.append(record(39, ret=i, seq=i, comm=comm, pid_ns=ns))
    b = Batch.from_records(recs)
    c = EventChunk(b, ((0, len(b)),), {NS_A: CONTAINER})
    want = [TraceEvent(ev, CONTAINER if ev.pid_ns == NS_A else None).to_dict() for ev in b]
    got = [json.loads(line) for line in encode_chunks([c], "json").splitlines()]
    assert got == want
    assert [d["comm"] for d in got] == ["a", "a", "b", "b", "a", "a"]
