"""A blocking client of one agent (``syshub.v1.Agent``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from syshub.client.channel import DEFAULT_AGENT, Endpoint, endpoint, rpc_error
from syshub.client.messages import WatchBatch, create_request, watch_batch, watch_request
from syshub.v1 import agent_pb2 as pb

SERVICE = "/syshub.v1.Agent/"

_Reply = TypeVar("_Reply", bound=Message)


def _serialize(m: Message) -> bytes:
    return m.SerializeToString()


class AgentClient:
    """``AgentClient("unix:///run/syshub/agent.sock")`` or ``AgentClient("host:port",
    tls_ca=..., token_file=...)``; every failure is an
    :class:`~syshub.client.AgentError` (one line, with the status code's name)."""

    def __init__(self, target: str = DEFAULT_AGENT, timeout: float = 30.0, **kw: Any) -> None:
        self.endpoint: Endpoint = endpoint(target, **kw)
        self.timeout = timeout
        self._channel = self.endpoint.channel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, req: Message, reply: type[_Reply]) -> _Reply:
        fn: Callable[..., Any] = self._channel.unary_unary(
            SERVICE + method,
            request_serializer=_serialize,
            response_deserializer=reply.FromString,
        )
        try:
            out: _Reply = fn(req, timeout=self.timeout, metadata=self.endpoint.metadata())
        except grpc.RpcError as e:
            raise rpc_error(self.endpoint, e) from None
        return out

    # traces ----------------------------------------------------------------
    def create_trace(self, manifest: str | os.PathLike[str], **kw: Any) -> pb.TraceInfo:
        """Start a trace from a manifest (text or path). ``pid=``, ``namespace_of=``
        or ``host=True`` pick a fixed target; ``wait_applied=`` seconds (default 5)."""
        return self._call("CreateTrace", create_request(manifest, **kw), pb.TraceInfo)

    def get_trace(self, name: str, namespace: str = "default") -> pb.TraceInfo:
        return self._call("GetTrace", pb.TraceRef(name=name, namespace=namespace), pb.TraceInfo)

    def list_traces(self, namespace: str = "") -> list[pb.TraceInfo]:
        reply = self._call(
            "ListTraces", pb.ListTracesRequest(namespace=namespace), pb.ListTracesResponse
        )
        return list(reply.traces)

    def delete_trace(self, name: str, namespace: str = "default") -> pb.TraceInfo:
        return self._call("DeleteTrace", pb.TraceRef(name=name, namespace=namespace), pb.TraceInfo)

    def stats(self, name: str | None = None, namespace: str = "default") -> pb.StatsResponse:
        req = pb.StatsRequest()
        if name is not None:
            req.trace.name = name
            req.trace.namespace = namespace
        return self._call("Stats", req, pb.StatsResponse)

    def syscalls(self, klass: str = "") -> pb.SyscallsResponse:
        return self._call("Syscalls", pb.SyscallsRequest(**{"class": klass}), pb.SyscallsResponse)

    def metrics(self) -> pb.MetricsResponse:
        """Per-syscall counts and latency histograms (agents run with --metrics-port)."""
        return self._call("Metrics", pb.MetricsRequest(), pb.MetricsResponse)

    # streams ---------------------------------------------------------------
    def watch_raw(
        self,
        name: str | None = None,
        *,
        namespace: str = "default",
        path: str | None = None,
        format: str = "json",
        queue: int = 0,
        max_batch: int = 0,
    ) -> Any:
        """The Watch call itself, a ``grpc.Call`` (iterate it for WatchResponse
        messages; ``cancel()`` ends it)."""
        req = watch_request(name, namespace, path, format, queue, max_batch)
        fn = self._channel.unary_stream(
            SERVICE + "Watch",
            request_serializer=_serialize,
            response_deserializer=pb.WatchResponse.FromString,
        )
        return fn(req, metadata=self.endpoint.metadata())

    def watch(
        self,
        name: str | None = None,
        *,
        namespace: str = "default",
        path: str | None = None,
        format: str = "json",
        parse: bool = True,
        queue: int = 0,
        max_batch: int = 0,
    ) -> Iterator[WatchBatch]:
        """Batches of a trace (by name) or a path (``ns/pod/container/syscall``)
        until the stream ends; the last has ``final`` and the final counters.
        With ``format="json"`` and ``parse``, ``batch.events`` are the event
        documents (``TraceEvent.to_dict()``). Closing the iterator cancels."""
        call = self.watch_raw(
            name, namespace=namespace, path=path, format=format, queue=queue, max_batch=max_batch
        )
        try:
            for msg in call:
                yield watch_batch(msg, parse, self.endpoint.target)
        except grpc.RpcError as e:
            if e.code() is grpc.StatusCode.CANCELLED:
                return
            raise rpc_error(self.endpoint, e) from None
        finally:
            call.cancel()
