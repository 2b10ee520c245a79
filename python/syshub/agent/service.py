"""The ``syshub.v1.Agent`` gRPC service on the agent's Hub: generic handlers
(no generated servicer), requests checked by :mod:`syshub.agent.requests`,
every refusal a status code with a one-line message naming the field."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeVar, cast

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from syshub import syscalls
from syshub.agent import convert, requests
from syshub.agent.requests import RequestError
from syshub.agent.streams import FORMAT_NAMES, Stream, StreamRegistry, chunk_pull
from syshub.agent.traces import TraceEntry, TraceRegistry
from syshub.hub import Hub, Subscription
from syshub.v1 import agent_pb2 as pb

SERVICE: Final = "syshub.v1.Agent"
#: Methods that change what the node traces (refused to read-only tokens).
WRITE_METHODS: Final = frozenset({"CreateTrace", "DeleteTrace"})

log = logging.getLogger("syshub.agent")

_R = TypeVar("_R")


class _BatchHub(Protocol):
    """A Hub with batch subscriptions (events encoded in Rust, H-enc's
    ``syshub.hub.batches``); checked with ``hasattr`` before use."""

    def subscribe_batches(self, target: Any, *, maxsize: int, overflow: str) -> Subscription: ...

    def subscribe_path_batches(
        self, path: Any, *, name: str, maxsize: int, overflow: str
    ) -> Subscription: ...


class AgentService:
    """The service's methods; the servers of :mod:`syshub.agent.server` call them."""

    def __init__(
        self,
        hub: Hub,
        traces: TraceRegistry,
        streams: StreamRegistry,
        node: str,
        stream_queue: int,
        max_batch: int,
    ) -> None:
        self.hub = hub
        self.traces = traces
        self.streams = streams
        self.node = node
        self.stream_queue = stream_queue
        self.max_batch = max_batch
        self.closing = False
        """Set when the agent stops: new calls are refused (UNAVAILABLE)."""
        self.rust_encoding = True
        """Use the Hub's batch subscriptions (events encoded in Rust) when it has them."""
        self.metrics_snapshot: Callable[[], Mapping[str, Any]] | None = None
        """The metrics component's ``snapshot()`` (None: no metrics)."""

    # traces ----------------------------------------------------------------
    def _info(self, entry: TraceEntry) -> pb.TraceInfo:
        js = self.hub.stats().jobs.get(entry.job.job_id)
        return convert.trace_info(entry, self.node, js)

    def create_trace(self, req: pb.CreateTraceRequest, context: grpc.ServicerContext) -> Message:
        trace = requests.parse_manifest(req.manifest)
        target = requests.target_of(req.target)
        capture = requests.capture_of(req.capture)
        wait = requests.wait_seconds(req.wait_applied_seconds)
        entry = self.traces.create(trace, target, capture, wait, persist=True)
        log.info(
            "trace created",
            extra={"trace": f"{trace.namespace}/{trace.name}", "job": entry.job.job_id},
        )
        return self._info(entry)

    def get_trace(self, req: pb.TraceRef, context: grpc.ServicerContext) -> Message:
        return self._info(self.traces.get(requests.trace_key(req)))

    def list_traces(self, req: pb.ListTracesRequest, context: grpc.ServicerContext) -> Message:
        jobs = self.hub.stats().jobs
        out = pb.ListTracesResponse(node=self.node)
        for e in self.traces.list(req.namespace):
            out.traces.append(convert.trace_info(e, self.node, jobs.get(e.job.job_id)))
        return out

    def delete_trace(self, req: pb.TraceRef, context: grpc.ServicerContext) -> Message:
        entry = self.traces.delete(requests.trace_key(req))
        log.info("trace deleted", extra={"trace": f"{entry.key[0]}/{entry.key[1]}"})
        return self._info(entry)

    # streams ---------------------------------------------------------------
    def _subscribe(self, req: pb.WatchRequest, queue: int) -> tuple[str, Subscription]:
        """The stream's queue: a batch subscription (events encoded in Rust)
        when the Hub has them, else one of Python events."""
        batches = self.rust_encoding and hasattr(self.hub, "subscribe_batches")
        which = req.WhichOneof("source")
        if which == "path":
            parts = requests.parse_path(req.path)
            name = "path:" + ("/".join(parts) or "*")
            if batches:
                sub: Subscription = cast(_BatchHub, self.hub).subscribe_path_batches(
                    parts, name=name, maxsize=queue, overflow="drop_newest"
                )
            else:
                sub = self.hub.subscribe_path(parts, name=name, maxsize=queue)
            return name, sub
        if which != "trace":
            raise requests.invalid("source", "give a trace (name) or a path")
        entry = self.traces.get(requests.trace_key(req.trace, "trace.name"))
        key = entry.key
        source = f"trace:{key[0]}/{key[1]}"
        if not entry.running:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"trace.name: trace {key[0]}/{key[1]} has ended "
                f"({entry.trace.status.state.value}): delete it and create it again",
            )
        if batches:
            sub = cast(_BatchHub, self.hub).subscribe_batches(
                entry.job, maxsize=queue, overflow="drop_newest"
            )
        else:
            sub = self.hub.subscribe(entry.job, maxsize=queue, overflow="drop_newest")
        if entry.job.stopped:  # ended meanwhile: the Hub may have missed this queue
            sub.close()
        return source, sub

    def watch(self, req: pb.WatchRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        queue = requests.positive(req.queue, self.stream_queue, 1 << 24, "queue")
        batch = requests.positive(req.max_batch, self.max_batch, 1 << 20, "max_batch")
        if req.format not in FORMAT_NAMES:
            raise requests.invalid("format", f"unknown event format {req.format}")
        source, sub = self._subscribe(req, queue)
        try:
            pull = chunk_pull(sub, req.format, self.node) if hasattr(sub, "get_chunks") else None
            stream = Stream(
                self.streams.next_id(),
                source,
                context.peer(),
                req.format,
                sub,
                batch,
                self.node,
                pull,
            )
            self.streams.add(stream)
        except BaseException:
            sub.close()
            raise
        context.add_callback(lambda: self._gone(stream))
        log.info("stream opened", extra={"stream": stream.id, "source": source})
        return self._stream(stream, context)

    def _gone(self, stream: Stream) -> None:
        """The call ended (client gone, cancelled, or done): free the stream at
        once, whether or not its thread is still blocked in a send."""
        stream.cancel()
        self.streams.remove(stream)

    def _stream(self, stream: Stream, context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            yield from stream.messages(context.is_active)
        finally:
            self.streams.remove(stream)
            st = stream.stats()
            log.info(
                "stream closed",
                extra={
                    "stream": stream.id,
                    "delivered": st.delivered,
                    "dropped": st.dropped,
                    "client_gone": stream.cancelled,
                },
            )

    # accounting ------------------------------------------------------------
    def stats(self, req: pb.StatsRequest, context: grpc.ServicerContext) -> Message:
        only: str | None = None
        streams = [s.stats() for s in self.streams.streams()]
        if req.HasField("trace"):
            entry = self.traces.get(requests.trace_key(req.trace, "trace.name"))
            only = entry.job.job_id
            key = entry.key
            streams = [s for s in streams if s.source == f"trace:{key[0]}/{key[1]}"]
        entries = {e.job.job_id: e for e in self.traces.list()}
        return convert.stats_response(self.node, self.hub.stats(), entries, streams, only)

    def syscalls(self, req: pb.SyscallsRequest, context: grpc.ServicerContext) -> Message:
        klass = getattr(req, "class")
        if klass and klass.lower() not in (c.lower() for c in syscalls.classes()):
            raise requests.invalid(
                "class",
                f"unknown syscall class {klass!r}; classes: {', '.join(syscalls.classes())}",
            )
        return convert.syscalls_response(klass)

    def metrics(self, req: pb.MetricsRequest, context: grpc.ServicerContext) -> Message:
        snapshot = self.metrics_snapshot
        if snapshot is None:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "metrics: this agent runs without metrics (start it with --metrics-port)",
            )
        out = pb.MetricsResponse()
        json_format.ParseDict(dict(snapshot()), out, ignore_unknown_fields=True)
        if not out.node:
            out.node = self.node
        return out

    # registration ----------------------------------------------------------
    def _gated(self, fn: Callable[[Any, grpc.ServicerContext], _R]) -> Callable[..., _R]:
        """``fn``, refused with UNAVAILABLE once the agent is stopping."""

        def call(req: Any, context: grpc.ServicerContext) -> _R:
            if self.closing:
                raise RequestError(grpc.StatusCode.UNAVAILABLE, "the agent is stopping")
            return fn(req, context)

        return call

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Callable[[Any, grpc.ServicerContext], Message], req: type[Message]) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                _guarded(self._gated(fn)),
                request_deserializer=req.FromString,
                response_serializer=_serialize,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateTrace": unary(self.create_trace, pb.CreateTraceRequest),
                "GetTrace": unary(self.get_trace, pb.TraceRef),
                "ListTraces": unary(self.list_traces, pb.ListTracesRequest),
                "DeleteTrace": unary(self.delete_trace, pb.TraceRef),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    _guarded_stream(self._gated(self.watch)),
                    request_deserializer=pb.WatchRequest.FromString,
                    response_serializer=_serialize,
                ),
                "Stats": unary(self.stats, pb.StatsRequest),
                "Syscalls": unary(self.syscalls, pb.SyscallsRequest),
                "Metrics": unary(self.metrics, pb.MetricsRequest),
            },
        )


def _serialize(msg: Message | bytes) -> bytes:
    """Messages, or bytes already encoded (events encoded in Rust)."""
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


def _abort(context: grpc.ServicerContext, e: Exception) -> None:
    if isinstance(e, RequestError):
        context.abort(e.code, e.message)
    log.exception("request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


def _guarded(fn: Callable[[Any, grpc.ServicerContext], Message]) -> Callable[..., Message]:
    @functools.wraps(fn)
    def call(req: Any, context: grpc.ServicerContext) -> Message:
        try:
            return fn(req, context)
        except Exception as e:
            _abort(context, e)
            raise  # abort raised already

    return call


def _guarded_stream(
    fn: Callable[[Any, grpc.ServicerContext], Iterator[bytes]],
) -> Callable[..., Iterator[bytes]]:
    @functools.wraps(fn)
    def call(req: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            it = fn(req, context)
        except Exception as e:
            _abort(context, e)
            raise
        return it

    return call
