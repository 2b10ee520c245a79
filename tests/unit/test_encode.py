"""The Rust encoders on hand-built records of every argument kind (strings
with quotes, control bytes, non-ASCII and invalid UTF-8; buffers; socket
addresses of each family; flags; structs; argv; errors; truncated and faulted
captures; calls that did not return; an unknown syscall number): JSON lines
equal ``json.dumps(to_dict())``, text equals ``to_text()``, the protobuf
EventBatch parses and equals the document. Real recorded batches:
tests/integration/test_encode_kernel.py."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encode_checks import check_batch, dumps, proto_doc
from syshub import _native
from syshub.hub.events import TraceEvent
from syshub.probe import Batch, encode_json, encode_proto, encode_text
from syshub.topology import Container
from syshub.v1 import event_pb2

LAYOUT = _native.abi_layout()["syshub_event"]
HDR_SIZE = LAYOUT["__size__"][1]
CAP_STR, CAP_BUF, CAP_SOCKADDR, CAP_STRV, CAP_STRV_END, CAP_STRUCT = 1, 2, 3, 4, 5, 6
CAPF_TRUNCATED, CAPF_FAULT = 0x1, 0x2
EVF_NO_EXIT, EVF_SCOPE, EVF_KILLED = 0x1, 0x10, 0x20
LEN_UNKNOWN = 0xFFFFFFFF
NS_A, NS_B = 4026531836, 4026532999

Cap = tuple[int, int, bytes, int, int]  # slot, kind, data, flags, orig_len


def record(
    nr: int,
    *,
    ret: int = 0,
    caps: list[Cap] = (),  # type: ignore[assignment]
    args: dict[int, int] | None = None,
    flags: int = 0,
    pid_ns: int = NS_A,
    seq: int = 1,
    comm: bytes = b"prog",
) -> bytes:
    body = b""
    for slot, kind, data, cflags, orig in caps:
        body += struct.pack("<BBHIII", slot, kind, cflags, len(data), orig, 0) + data
        body += b"\0" * (-len(body) % 8)
    hdr = bytearray(HDR_SIZE)
    struct.pack_into("<HHII", hdr, 0, 1, flags, HDR_SIZE + len(body), nr)

    def put(field: str, fmt: str, value: int | bytes) -> None:
        struct.pack_into(fmt, hdr, LAYOUT[field][0], value)

    put("ncaptures", "<H", len(caps))
    for field, value in (("tgid", 4242), ("tid", 4243), ("ns_tgid", 7), ("ns_tid", 8)):
        put(field, "<I", value)
    for field, value in (("uid", 1000), ("gid", 100), ("sid", 4242), ("pid_ns", pid_ns)):
        put(field, "<I", value)
    put("mnt_ns", "<I", 4026531841)
    put("uts_ns", "<I", 4026531838)
    put("scope", "<H", 3)
    put("cgroup_id", "<Q", 12345)
    put("enter_ns", "<Q", 1_000_000_000)
    put("exit_ns", "<Q", 1_000_012_345)
    put("ret", "<q", ret)
    put("seq", "<Q", seq)
    put("comm", "16s", comm)
    for slot, value in (args or {}).items():
        struct.pack_into("<Q", hdr, LAYOUT["args"][0] + 8 * slot, value & (2**64 - 1))
    return bytes(hdr) + body


def s(slot: int, data: bytes, flags: int = 0) -> Cap:
    return (slot, CAP_STR, data, flags, len(data))


def sockaddr(slot: int, data: bytes) -> Cap:
    return (slot, CAP_SOCKADDR, data, 0, len(data))


INET = struct.pack("<H", 2) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1]) + bytes(8)
INET6 = (
    struct.pack("<H", 10) + struct.pack(">HI", 443, 7) + bytes(15) + b"\x01" + struct.pack("<I", 2)
)
UNIX = struct.pack("<H", 1) + b"/run/x.sock\0"
ABSTRACT = struct.pack("<H", 1) + b"\0hidden"
NETLINK = struct.pack("<H", 16) + bytes(2) + struct.pack("<II", 99, 5)
OTHER = struct.pack("<H", 42) + b"\x01\x02\xff"
ODD_PATH = b'/tmp/a "q" \\ \n\t\x1b[31m caf\xc3\xa9 \xf0\x9f\x98\x80 bad\xff\xfe end'


def records() -> list[bytes]:
    """One record of each kind the decoder renders differently."""
    argv = [
        (1, CAP_STRV, b"ls", 0, 2),
        (1, CAP_STRV, b"-l\xff", 0, 3),
        (1, CAP_STRV, b"/tm", CAPF_TRUNCATED, 9),
        (1, CAP_STRV_END, b"", 0, 0),
    ]
    return [
        record(257, ret=3, caps=[s(1, b"/etc/hostname")], args={0: -100, 2: 0o2000000}),
        record(257, ret=-2, caps=[s(1, ODD_PATH)], args={0: -100, 2: 0o1101, 3: 0o644}, seq=2),
        record(257, ret=-13, caps=[s(1, b"/very/long", CAPF_TRUNCATED)], args={0: 3}, seq=3),
        record(1, ret=7, caps=[(1, CAP_BUF, b"hello\0\xff", 0, 7)], args={0: 1, 2: 7}),
        record(1, ret=-14, caps=[(1, CAP_BUF, b"", CAPF_FAULT, LEN_UNKNOWN)], args={1: 0x10}),
        record(0, ret=100, caps=[(1, CAP_BUF, b"abc", CAPF_TRUNCATED, 100)], args={2: 4096}),
        *(
            record(42, ret=-111, caps=[sockaddr(1, sa)], args={0: 3, 2: len(sa)}, seq=i + 1)
            for i, sa in enumerate((INET, INET6, UNIX, ABSTRACT, NETLINK, OTHER))
        ),
        record(59, ret=0, caps=[s(0, b"/bin/ls"), *argv], args={2: 0x7FFF0000}),
        record(231, flags=EVF_NO_EXIT, args={0: 3}),
        record(0, ret=-4, flags=EVF_KILLED, args={0: 3}, seq=2),
        record(0, ret=-512, args={0: 3}, seq=3),
        record(35, caps=[(0, CAP_STRUCT, struct.pack("<qq", 1, 500), 0, 16)], args={0: 1}),
        record(400, ret=-38, args={0: 1, 5: 2**64 - 1}),
        record(39, ret=77, flags=EVF_SCOPE, pid_ns=NS_B, comm=b"t\x1bop\xff"),
        record(9, ret=0x7F0000001000, args={1: 4096, 2: 3, 3: 0x22, 4: 2**64 - 1}),
    ]


CONTAINER = Container(
    id="abc123",
    name="web",
    pid=4242,
    pid_ns=NS_A,
    pod="web-0",
    namespace="prod",
    image="nginx:1",
    labels={"app": "web", "tier": "fr\u00f6nt"},
)


@pytest.fixture
def batch() -> Batch:
    return Batch.from_records(records())


def test_every_kind_encodes_as_its_document(batch: Batch) -> None:
    assert check_batch(batch, {NS_A: CONTAINER, NS_B: None}) == len(records())


def test_without_containers_every_event_has_container_null(batch: Batch) -> None:
    check_batch(batch)
    for line in encode_json(batch).decode().splitlines():
        assert json.loads(line)["container"] is None


def test_ranges_select_events_in_order(batch: Batch) -> None:
    ranges = [(1, 3), (5, 6), (10, len(batch))]
    assert check_batch(batch, {NS_A: CONTAINER}, ranges) == 2 + 1 + len(batch) - 10
    assert encode_json(batch, []) == b"" and encode_text(batch, [(4, 4)]) == b""
    assert event_pb2.EventBatch.FromString(encode_proto(batch, [])).events == []


def test_documents_say_what_did_not_return(batch: Batch) -> None:
    docs = [json.loads(line) for line in encode_json(batch).decode().splitlines()]
    by_name = [(d["syscall"]["name"], d["returned"], d["return"], d["errno"]) for d in docs]
    assert ("sys_exit_group", False, None, None) in by_name
    assert ("sys_read", False, None, None) in by_name  # killed, and a restart code
    assert ("sys_openat", True, -2, 2) in by_name
    unknown = next(d for d in docs if d["syscall"]["nr"] == 400)
    assert unknown["syscall"] == {"nr": 400, "name": None, "class": None, "group": None}
    assert list(unknown["args"]) == [f"arg{i}" for i in range(6)]
    for d in docs:
        assert (d["error"] is None) == (not d["returned"])


def test_json_escapes_like_python(batch: Batch) -> None:
    line = encode_json(batch, [(1, 2)]).decode()
    assert line.isascii() and "\\ufffd" in line and "\\ud83d\\ude00" in line
    assert '\\"q\\"' in line and "\\u001b" in line


def test_node_comes_last_and_proto_batches_concatenate(batch: Batch) -> None:
    docs = {NS_A: CONTAINER.to_dict()}
    line = encode_json(batch, [(0, 1)], docs, node="worker-1").decode()
    d = json.loads(line)
    assert list(d)[-2:] == ["container", "node"] and d["node"] == "worker-1"
    assert d["container"]["labels"] == {"app": "web", "tier": "fr\u00f6nt"}
    joined = encode_proto(batch, [(0, 2)], docs) + encode_proto(batch, [(2, 3)], docs)
    msg = event_pb2.EventBatch.FromString(joined)
    assert [e.seq for e in msg.events] == [1, 2, 3]
    whole = event_pb2.EventBatch.FromString(encode_proto(batch, None, docs)).events
    assert [proto_doc(e) for e in msg.events] == [proto_doc(e) for e in whole[:3]]


def test_to_dict_and_args_follow_the_same_description(batch: Batch) -> None:
    for i, ev in enumerate(batch):
        d = ev.to_dict()
        assert "container" not in d
        assert d["args"] == ev.args
        assert d["returned"] == ev.returned
        assert d["errno"] == ev.errno
        assert (ev.error == "?") == (not ev.returned)
        line = encode_json(batch, [(i, i + 1)]).decode()
        assert line == dumps(TraceEvent(ev, None).to_dict()) + "\n"


#: Calls of two threads, a few syscalls, results and namespaces: consecutive
#: events share all, some or none of their process, result and container, as
#: the JSON encoder's copies of the last event's fields assume they may.
_call = st.builds(
    lambda nr, ret, flags, ns, tid, comm: _with_tid(
        record(nr, ret=ret, flags=flags, pid_ns=ns, comm=comm), tid
    ),
    st.sampled_from([39, 110, 0, 257, 400]),
    st.sampled_from([0, 3, -2, -512, 2**40]),
    st.sampled_from([0, EVF_NO_EXIT, EVF_KILLED]),
    st.sampled_from([NS_A, NS_B, 4026533000]),
    st.sampled_from([4243, 4244]),
    st.sampled_from([b"prog", b"t\x1bop\xff"]),
)


def _with_tid(rec: bytes, tid: int) -> bytes:
    out = bytearray(rec)
    struct.pack_into("<I", out, LAYOUT["tid"][0], tid)
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_call, st.sampled_from(records())), min_size=1, max_size=40))
def test_any_stream_encodes_event_by_event_as_its_document(recs: list[bytes]) -> None:
    check_batch(Batch.from_records(recs), {NS_A: CONTAINER, NS_B: None})


def test_bad_arguments_are_one_line_errors(batch: Batch) -> None:
    with pytest.raises(ValueError, match="not within the batch"):
        encode_json(batch, [(0, len(batch) + 1)])
    with pytest.raises(ValueError, match="not within the batch"):
        encode_text(batch, [(3, 2)])
    with pytest.raises(TypeError, match="container document"):
        encode_json(batch, None, {NS_A: {"id": object()}})
    with pytest.raises(ValueError, match="record 1 is malformed"):
        Batch.from_records([records()[0], b"\x01\x00"])


def test_runs_and_select_are_the_routers_units() -> None:
    recs = [record(39, seq=i, pid_ns=NS_A) for i in range(1, 7)]
    recs += [record(39, seq=i, pid_ns=NS_B) for i in (7, 8)]
    recs += [record(0, seq=1, pid_ns=NS_B)]
    b = Batch.from_records(recs)
    assert b.runs() == [
        (NS_A, 39, NS_A, 0, 6, 1, 6),
        (NS_B, 39, NS_B, 6, 8, 7, 8),
        (NS_B, 0, NS_B, 8, 9, 1, 1),
    ]
    assert b.select(0, 6, 0, 2, 2**64 - 1) == [(1, 2), (3, 4), (5, 6)]
    assert b.select(0, 6, 2, 1, 5) == [(2, 5)]
    assert b.select(0, 8, 0, 1, 2**64 - 1) == [(0, 8)]


def test_a_small_selection_is_copied_out_of_its_batch() -> None:
    """A chunk keeps its batch alive: a sampled job's chunk holds a compact
    copy of its events, not the whole poll batch."""
    from syshub.hub.jobs import Job, JobContext
    from syshub.hub.router import Router
    from syshub.spec.trace import Trace

    b = Batch.from_records([record(110, seq=i) for i in range(1, 101)])
    router = Router(lambda ns: CONTAINER if ns == NS_A else None)
    job = Job(Trace.new("sampled", ["getppid"], sample_rate=10))
    router.routes = {(NS_A, 110): (JobContext(job, NS_A, 110),)}
    sub = router.subscribe("job_subs", job.job_id, "s", 1000, "drop_newest", batch=True)
    whole = router.subscribe("job_subs", job.job_id, "w", 1000, "drop_newest", batch=True)
    router.route(b)
    (c,) = sub.get_chunks(timeout=0)
    assert len(c) == len(c.batch) == 10 and c.ranges == ((0, 10),)
    assert [ev.seq for ev in c.events()] == list(range(10, 101, 10))
    assert c.containers == {NS_A: CONTAINER}
    check_batch(c.batch, {NS_A: CONTAINER})
    assert whole.get_chunks(timeout=0)[0].to_json() == c.to_json()
    assert b.take([(5, 7)]).raw(1) == b.raw(6)
