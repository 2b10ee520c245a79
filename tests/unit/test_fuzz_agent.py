"""The agent's request messages under hypothesis: any manifest text, path,
wait, target and capture, and any bytes as a serialized request, end in a
valid value or a RequestError (INVALID_ARGUMENT, one line, naming the field);
nothing else escapes."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from syshub.agent import requests as rq
from syshub.spec.trace import Trace
from syshub.v1 import agent_pb2 as pb

U32 = st.integers(min_value=0, max_value=2**32 - 1)


def refused(e: rq.RequestError, field: str) -> None:
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT, e.code
    assert "\n" not in e.message and e.message.strip(), e.message
    assert e.message.startswith(field), e.message


manifests = st.text(max_size=400) | st.builds(
    lambda name, calls, extra: (
        f"apiVersion: syshub.io/v1alpha1\nkind: Trace\nmetadata:\n  name: {name}\n"
        f"spec:\n  syscalls: {calls}\n{extra}"
    ),
    st.text(max_size=20),
    st.lists(st.text(max_size=12), max_size=4),
    st.text(max_size=60),
)


@settings(max_examples=400, deadline=None)
@given(manifests)
def test_manifest_text(text: str) -> None:
    try:
        trace = rq.parse_manifest(text)
    except rq.RequestError as e:
        refused(e, "manifest")
        return
    assert isinstance(trace, Trace)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80) | st.lists(st.text(max_size=12), max_size=6).map("/".join))
def test_watch_path(text: str) -> None:
    try:
        key = rq.parse_path(text)
    except rq.RequestError as e:
        refused(e, "path")
        return
    assert isinstance(key, tuple) and len(key) <= 4


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_wait(value: float) -> None:
    try:
        w = rq.wait_seconds(value)
    except rq.RequestError as e:
        refused(e, "wait_applied_seconds")
        return
    assert math.isfinite(w) and 0 < w <= rq.MAX_WAIT


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.just(None), st.booleans(), U32, U32), st.sampled_from(["host", "pid", "ns"]))
def test_target(value: bool | int | None, kind: str) -> None:
    msg = pb.TraceTarget()
    if value is not None:
        if kind == "host":
            msg.host = bool(value)
        elif kind == "pid":
            msg.pid = int(value)
        else:
            msg.namespace_of = int(value)
    try:
        rq.target_of(msg)
    except rq.RequestError as e:
        refused(e, "target")


@settings(max_examples=300, deadline=None)
@given(U32, U32, U32)
def test_capture(str_max: int, argv_max: int, buf_max: int) -> None:
    msg = pb.Capture(str_max=str_max, argv_max=argv_max, buf_max=buf_max)
    try:
        rq.capture_of(msg)
    except rq.RequestError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "\n" not in e.message and "capture" in e.message, e.message


@pytest.mark.parametrize(
    "cls", [pb.CreateTraceRequest, pb.WatchRequest, pb.StatsRequest, pb.TraceRef]
)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_serialized_requests(cls: type[Message], data: bytes) -> None:
    """Random bytes as a request: refused by protobuf, or a message whose
    fields the checks above handle."""
    try:
        msg = cls.FromString(data)
    except DecodeError:
        return
    try:
        if isinstance(msg, pb.CreateTraceRequest):
            rq.parse_manifest(msg.manifest)
            rq.wait_seconds(msg.wait_applied_seconds)
            rq.capture_of(msg.capture)
        elif isinstance(msg, pb.WatchRequest):
            if msg.WhichOneof("source") == "path":
                rq.parse_path(msg.path)
            rq.positive(msg.queue, 1000, 1 << 20, "queue")
        elif isinstance(msg, pb.TraceRef):
            rq.trace_key(msg)
    except rq.RequestError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "\n" not in e.message
