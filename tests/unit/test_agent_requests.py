"""The agent's request checks (status code + one line naming the field), its
token check, and a Watch stream's messages and counters on a plain
Subscription. No server, no kernel."""

from __future__ import annotations

import json
import os
from typing import Any

import grpc
import pytest

from syshub.agent import requests
from syshub.agent.auth import TokenAuth
from syshub.agent.requests import RequestError
from syshub.agent.streams import Stream, StreamRegistry
from syshub.hub import Subscription, TargetKind
from syshub.v1 import agent_pb2 as pb

OK = """apiVersion: syshub.io/v1alpha1
kind: Trace
metadata: {name: t1}
spec: {syscalls: [openat, execve]}
"""


def _code(fn: Any, *args: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(RequestError) as e:
        fn(*args)
    return e.value.code, e.value.message


def test_manifest() -> None:
    t = requests.parse_manifest(OK)
    assert (t.namespace, t.name, list(t.spec.syscalls)) == ("default", "t1", ["openat", "execve"])
    swoll = OK.replace("syshub.io", "tools.swoll.criticalstack.com")
    assert requests.parse_manifest(swoll).api_version.startswith("tools.swoll")
    assert requests.parse_manifest(json.dumps({"apiVersion": "syshub.io/v1alpha1", "kind": "Trace",
        "metadata": {"name": "j"}, "spec": {"syscalls": ["read"]}})).name == "j"  # fmt: skip
    bad = {
        OK.replace("execve", "nosuchcall"): "manifest: spec.syscalls[1]",
        OK.replace("execve]", "execve], duration: soon"): "manifest: spec.duration",
        OK.replace("execve]", "execve], labelSelector: 'a in'"): "manifest: spec.labelSelector",
        OK.replace("kind: Trace", "kind: Pod"): "manifest: ",
        OK + "---\n" + OK: "manifest: document: expected exactly one Trace",
        "   ": "manifest: empty",
        "{": "manifest: ",
    }
    for text, prefix in bad.items():
        code, message = _code(requests.parse_manifest, text)
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert message.startswith(prefix), message
        assert "\n" not in message


def test_path() -> None:
    assert requests.parse_path("default/web/nginx/openat") == ("default", "web", "nginx", "openat")
    assert requests.parse_path("default") == ("default",)
    assert requests.parse_path("default//x") == ("default",)
    assert requests.parse_path("") == ()
    for text in ("a/b/c/nosuchcall", "a/b/c/d/e"):
        code, message = _code(requests.parse_path, text)
        assert code is grpc.StatusCode.INVALID_ARGUMENT and message.startswith("path: ")


def test_numbers_and_targets() -> None:
    assert requests.wait_seconds(0) == requests.DEFAULT_WAIT
    assert requests.wait_seconds(2.5) == 2.5
    for v in (-1.0, float("nan"), float("inf"), 61.0):
        code, message = _code(requests.wait_seconds, v)
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert message.startswith("wait_applied_seconds: ")
    assert requests.positive(0, 7, 10, "queue") == 7
    assert _code(requests.positive, 11, 7, 10, "queue")[1] == "queue: must be at most 10, got 11"
    assert requests.target_of(pb.TraceTarget()).kind is TargetKind.CONTAINERS
    assert requests.target_of(pb.TraceTarget(host=True)).kind is TargetKind.EVERY_NAMESPACE
    me = os.getpid()
    assert requests.target_of(pb.TraceTarget(pid=me)).value == me
    assert requests.target_of(pb.TraceTarget(namespace_of=me)).kind is TargetKind.NAMESPACE_OF
    assert _code(requests.target_of, pb.TraceTarget(pid=1 << 30))[1].startswith("target.pid: ")
    assert _code(requests.target_of, pb.TraceTarget(host=False))[1].startswith("target.host: ")
    assert _code(requests.trace_key, pb.TraceRef())[1] == "name: a trace name is required"
    assert requests.trace_key(pb.TraceRef(name="x")) == ("", "x")


def test_capture() -> None:
    assert requests.capture_of(pb.Capture()) is None
    cap = requests.capture_of(pb.Capture(str_max=512))
    assert cap is not None and (cap.str_max, cap.argv_max) == (512, 32)
    code, message = _code(requests.capture_of, pb.Capture(str_max=1 << 30))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and message.startswith("capture.strMax")


def test_token_check() -> None:
    auth = TokenAuth(("full",), ("reader",))
    create, watch = "/syshub.v1.Agent/CreateTrace", "/syshub.v1.Agent/Watch"
    health = "/grpc.health.v1.Health/Check"
    bearer = lambda t: (("authorization", f"Bearer {t}"),)  # noqa: E731
    assert auth.check(create, bearer("full")) is None
    assert auth.check(watch, bearer("reader")) is None
    assert auth.check(create, bearer("reader")) == "denied"
    assert auth.check("/syshub.v1.Agent/DeleteTrace", bearer("reader")) == "denied"
    assert auth.check(watch, bearer("nope")) == "unauthenticated"
    assert auth.check(watch, ()) == "unauthenticated"
    assert auth.check(watch, (("authorization", "Basic full"),)) == "unauthenticated"
    assert auth.check(health, ()) is None


class Ev:
    def __init__(self, i: int) -> None:
        self.i = i

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.i, "comm": "é\n"}

    def to_text(self) -> str:
        return f"call{self.i}() = 0"


def test_stream_messages_and_counters() -> None:
    sub = Subscription("s", maxsize=5)
    s = Stream("s1", "trace:default/t", "peer", pb.EVENT_FORMAT_JSON, sub, 2, "n1")
    assert sub.put_many([Ev(i) for i in range(7)]) == 2  # 2 dropped: the queue holds 5
    sub.close()
    msgs = [pb.WatchResponse.FromString(m) for m in s.messages(lambda: True)]
    assert [m.count for m in msgs] == [2, 2, 1, 0] and msgs[-1].final
    docs = [json.loads(line) for m in msgs for line in m.json_lines.decode().splitlines()]
    assert docs == [{"seq": i, "comm": "é\n"} for i in range(5)]
    assert [m.counters.delivered for m in msgs] == [2, 4, 5, 5]
    last = msgs[-1].counters
    assert (last.matched, last.delivered, last.dropped, last.queued) == (7, 5, 2, 0)
    assert msgs[-1].end_reason == "trace ended" and msgs[0].node == "n1"


def test_stream_text_cancel_and_formats() -> None:
    sub = Subscription("s")
    s = Stream("s2", "path:*", "peer", pb.EVENT_FORMAT_TEXT, sub, 10, "n1")
    sub.put_many([Ev(1)])
    it = s.messages(lambda: True)
    assert pb.WatchResponse.FromString(next(it)).text_lines == b"call1() = 0\n"
    s.cancel()
    assert list(it) == []  # a client that went away gets no final message
    s2 = Stream("s3", "path:*", "peer", pb.EVENT_FORMAT_JSON, Subscription("x"), 10, "n1")
    assert list(s2.messages(lambda: False)) == []  # inactive client: ends at once
    code, message = _code(Stream, "s4", "x", "p", 99, Subscription("y"), 1, "n")
    assert code is grpc.StatusCode.UNIMPLEMENTED and message.startswith("format: ")


def test_frame_sets_a_field_of_a_serialized_message() -> None:
    from syshub.agent.streams import frame

    payload = b"x" * 300  # a length over one varint byte
    head = pb.WatchResponse(node="n", count=3).SerializeToString()
    msg = pb.WatchResponse.FromString(
        head + frame(pb.WatchResponse.JSON_LINES_FIELD_NUMBER, payload)
    )
    assert (msg.node, msg.count, msg.json_lines) == ("n", 3, payload)
    batch = b"\x12\x02n2"  # EventBatch{node: "n2"}, as bytes encoded elsewhere
    msg = pb.WatchResponse.FromString(head + frame(pb.WatchResponse.BATCH_FIELD_NUMBER, batch))
    assert msg.batch.node == "n2" and msg.WhichOneof("events") == "batch"


def test_stream_registry_limit_and_stop() -> None:
    reg = StreamRegistry(max_streams=1)
    a = Stream(reg.next_id(), "x", "p", pb.EVENT_FORMAT_JSON, Subscription("a"), 1, "n")
    reg.add(a)
    b = Stream(reg.next_id(), "x", "p", pb.EVENT_FORMAT_JSON, Subscription("b"), 1, "n")
    code, message = _code(reg.add, b)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and b.sub.closed
    assert message == "too many streams: this agent serves at most 1"
    reg.stop_all("agent stopping")
    assert a.end_reason == "agent stopping"
    reg.remove(a)
    assert len(reg) == 0 and a.sub.closed and reg.wait_empty(0.1)
