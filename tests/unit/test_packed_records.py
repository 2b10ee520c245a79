"""The packed records form (``EventBatch.packed_records``, what agents send
for ``format="records"``): any stream of records, packed by the agent's
encoder and unpacked by the client, is exactly the same records (bytes, JSON
lines, seq column); a stream of one repeated call costs a few bytes per event;
malformed packed data is a one-line error. bpf-rs/src/encode/tests.rs holds
the codec's own property tests on arbitrary byte records."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_encode import CAP_BUF, CONTAINER, LAYOUT, NS_A, NS_B, record, records, s

from syshub.client.messages import records_of
from syshub.hub.batches import encode_chunks
from syshub.hub.subscriptions import EventChunk
from syshub.probe import Batch, unpack_records
from syshub.v1 import event_pb2

SAMPLES = records()

_u64 = st.integers(0, 2**64 - 1)
_call = st.builds(
    lambda nr, ret, seq, ns, args, comm, cap: record(
        nr, ret=ret, seq=seq, pid_ns=ns, args=args, comm=comm, caps=cap
    ),
    st.sampled_from([39, 110, 0, 1, 257, 400]),
    st.integers(-4095, 2**40),
    _u64,
    st.sampled_from([NS_A, NS_B]),
    st.dictionaries(st.integers(0, 5), _u64, max_size=6),
    st.binary(max_size=16),
    st.one_of(
        st.just([]),
        st.binary(max_size=40).map(lambda b: [s(1, b)]),
        st.binary(max_size=40).map(lambda b: [(1, CAP_BUF, b, 0, len(b))]),
    ),
)
_record = st.one_of(_call, st.sampled_from(SAMPLES))


def _round_trip(recs: list[bytes], ranges: tuple[tuple[int, int], ...] | None = None) -> None:
    src = Batch.from_records(recs)
    ranges = ranges or ((0, len(src)),)
    chunk = EventChunk(src, ranges, {NS_A: CONTAINER, NS_B: None})
    b = event_pb2.EventBatch.FromString(encode_chunks([chunk], "records", node="n"))
    want = [src.raw(i) for i in chunk.indexes()]
    assert (b.count, b.records) == (len(want), b"")
    got = records_of(b)
    assert [got.batch.raw(i) for i in range(len(got))] == want
    assert got.json_lines() == chunk.to_json()
    assert memoryview(got.batch.column("seq")).tolist() == [src[i].seq for i in chunk.indexes()]


@settings(max_examples=150, deadline=None)
@given(st.lists(_record, min_size=1, max_size=30))
def test_any_record_stream_unpacks_to_the_same_records(recs: list[bytes]) -> None:
    _round_trip(recs)


@settings(max_examples=50, deadline=None)
@given(st.lists(_record, min_size=4, max_size=20), st.data())
def test_selected_ranges_pack_only_their_records(recs: list[bytes], data: st.DataObject) -> None:
    a = data.draw(st.integers(0, len(recs) - 2))
    b = data.draw(st.integers(a + 1, len(recs)))
    _round_trip(recs, ((0, 1), (a, b)) if a > 1 else ((a, b),))


def test_a_repeated_call_packs_to_a_few_bytes_per_event() -> None:
    recs = []
    for i in range(1000):
        r = bytearray(record(110, ret=4242, seq=i + 1, comm=b"loop"))
        struct.pack_into("<Q", r, LAYOUT["exit_ns"][0], 1_000_000_000 + 280 * i)
        recs.append(bytes(r))
    src = Batch.from_records(recs)
    b = event_pb2.EventBatch.FromString(
        encode_chunks([EventChunk(src, ((0, len(src)),), {})], "records", node="n")
    )
    assert len(b.packed_records) < 12 * len(recs), len(b.packed_records)
    got = unpack_records(b.packed_records)
    assert [got.raw(i) for i in range(len(got))] == recs


def test_malformed_packed_records_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"^packed record 0 at byte 0: truncated$"):
        unpack_records(b"\x80")
    with pytest.raises(ValueError, match=r"^packed record 0 at byte 0: size 4 is below 8 bytes$"):
        unpack_records(b"\x80\x80\x80\x80\x80\x01")
    assert len(unpack_records(b"")) == 0
