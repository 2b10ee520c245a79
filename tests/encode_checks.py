"""Shared by the encoder tests (unit: hand-built records; bpf: real recorded
batches): the Rust encoders against the per-event Python documents, and the
protobuf EventBatch read back into the same document shape."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from syshub.hub.events import TraceEvent
from syshub.probe import Batch, encode_json, encode_proto, encode_text
from syshub.topology import Container
from syshub.v1 import event_pb2

dumps = json.JSONEncoder(separators=(",", ":")).encode


def _arg_value(a: Any) -> Any:
    which = a.WhichOneof("value")
    if which in ("int", "uint", "sym", "str"):
        return getattr(a, which)
    if which == "strs":
        return list(a.strs.items)
    if which == "buffer":
        b = a.buffer
        d: dict[str, Any] = {
            "data": b.data.decode("utf-8", "replace"),
            "len": b.len if b.HasField("len") else None,
            "truncated": b.truncated,
        }
        if b.fault:
            d["fault"] = True
        return d
    if which == "sockaddr":
        return _sockaddr(a.sockaddr)
    if which == "struct":
        return {f.name: _arg_value(f) for f in a.struct.fields}
    if which == "list":
        return [_arg_value(i) for i in a.list.items]
    raise AssertionError(f"argument {a.name} has no value")


def _sockaddr(s: Any) -> dict[str, Any]:
    if s.family == "AF_INET":
        return {"family": s.family, "addr": s.addr, "port": s.port}
    if s.family == "AF_INET6":
        return {
            "family": s.family,
            "addr": s.addr,
            "port": s.port,
            "flowinfo": s.flowinfo,
            "scope_id": s.scope_id,
        }
    if s.family == "AF_UNIX":
        return {"family": s.family, "path": s.path, "abstract": s.abstract}
    if s.family == "AF_NETLINK":
        return {"family": s.family, "pid": s.nl_pid, "groups": s.groups}
    assert s.family == str(s.family_nr)
    return {"family": s.family_nr, "data": s.data.hex()}


def _container(c: Any) -> dict[str, Any]:
    out = {
        "id": c.id,
        "pod": c.pod,
        "sandbox-id": c.sandbox_id,
        "name": c.name,
        "image": c.image,
        "namespace": c.namespace,
        "labels": dict(c.labels),
        "pid": c.pid,
        "pid-namespace": c.pid_namespace,
    }
    return {k: v for k, v in out.items() if v not in ("", {}, 0)}


def proto_doc(ev: Any) -> dict[str, Any]:
    """A protobuf Event as the JSON document (``to_dict()``) says it."""
    sc = ev.syscall
    d: dict[str, Any] = {
        "syscall": {
            "nr": sc.nr,
            "name": sc.name or None,
            "class": getattr(sc, "class") or None,
            "group": sc.group or None,
        },
        "pid": ev.pid,
        "tgid": ev.pid,
        "tid": ev.tid,
        "container_pid": ev.ns_pid,
        "ns_pid": ev.ns_pid,
        "container_tid": ev.ns_tid,
        "uid": ev.uid,
        "gid": ev.gid,
        "comm": ev.comm,
        "session": ev.session,
        "error": ev.error if ev.returned else None,
        "errno": ev.errno if ev.HasField("errno") else None,
        "return": ev.ret if ev.HasField("ret") else None,
        "returned": ev.returned,
        "pid_ns": ev.pid_ns,
        "uts_ns": ev.uts_ns,
        "mount_ns": ev.mnt_ns,
        "cgroup_id": ev.cgroup_id,
        "start": ev.start_ns,
        "finish": ev.finish_ns,
        "seq": ev.seq,
        "args": {a.name: _arg_value(a) for a in ev.args},
    }
    if ev.truncated:
        d["truncated"] = list(ev.truncated)
    d["container"] = _container(ev.container) if ev.HasField("container") else None
    return d


def check_batch(
    batch: Batch,
    containers: Mapping[int, Container | None] | None = None,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> int:
    """Every event of ``ranges`` of ``batch``: the Rust JSON line equals
    ``dumps(to_dict())``, the text line ``to_text()``, and the EventBatch
    read back equals the document. Returns how many events were checked."""
    conts = containers or {}
    idx = [i for s, e in ranges for i in range(s, e)] if ranges else list(range(len(batch)))
    events = [TraceEvent(batch[i], conts.get(batch[i].pid_ns)) for i in idx]
    docs = {ns: c.to_dict() if c is not None else None for ns, c in conts.items()}

    lines = encode_json(batch, ranges, docs).decode().splitlines()
    assert len(lines) == len(events)
    for line, ev in zip(lines, events, strict=True):
        assert line == dumps(ev.to_dict()), ev.to_text()

    text = encode_text(batch, ranges).decode()
    assert text == "".join(ev.to_text() + "\n" for ev in events)

    msg = event_pb2.EventBatch.FromString(encode_proto(batch, ranges, docs, node="n1"))
    assert msg.node == "n1" and msg.realtime_offset_ns > 0
    assert len(msg.events) == len(events)
    for pev, ev in zip(msg.events, events, strict=True):
        want = json.loads(dumps(ev.to_dict()))
        assert proto_doc(pev) == want, ev.to_text()
    return len(events)
