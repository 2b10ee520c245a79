"""An asyncio client of one agent (``grpc.aio``): the same calls as
:class:`~syshub.client.AgentClient`, awaited; ``watch`` is an async iterator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from syshub.client.channel import DEFAULT_AGENT, Endpoint, endpoint, rpc_error
from syshub.client.messages import WatchBatch, create_request, watch_batch, watch_request
from syshub.client.sync import SERVICE
from syshub.v1 import agent_pb2 as pb

_Reply = TypeVar("_Reply", bound=Message)


def _serialize(m: Message) -> bytes:
    return m.SerializeToString()


class AsyncAgentClient:
    """``async with AsyncAgentClient(target) as c: await c.list_traces()``."""

    def __init__(self, target: str = DEFAULT_AGENT, timeout: float = 30.0, **kw: Any) -> None:
        self.endpoint: Endpoint = endpoint(target, **kw)
        self.timeout = timeout
        self._channel = self.endpoint.aio_channel()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncAgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, req: Message, reply: type[_Reply]) -> _Reply:
        fn = self._channel.unary_unary(
            SERVICE + method,
            request_serializer=_serialize,
            response_deserializer=reply.FromString,
        )
        try:
            out: _Reply = await fn(req, timeout=self.timeout, metadata=self.endpoint.metadata())
        except grpc.RpcError as e:
            raise rpc_error(self.endpoint, e) from None
        return out

    async def create_trace(self, manifest: str | os.PathLike[str], **kw: Any) -> pb.TraceInfo:
        return await self._call("CreateTrace", create_request(manifest, **kw), pb.TraceInfo)

    async def get_trace(self, name: str, namespace: str = "default") -> pb.TraceInfo:
        ref = pb.TraceRef(name=name, namespace=namespace)
        return await self._call("GetTrace", ref, pb.TraceInfo)

    async def list_traces(self, namespace: str = "") -> list[pb.TraceInfo]:
        reply = await self._call(
            "ListTraces", pb.ListTracesRequest(namespace=namespace), pb.ListTracesResponse
        )
        return list(reply.traces)

    async def delete_trace(self, name: str, namespace: str = "default") -> pb.TraceInfo:
        ref = pb.TraceRef(name=name, namespace=namespace)
        return await self._call("DeleteTrace", ref, pb.TraceInfo)

    async def stats(self, name: str | None = None, namespace: str = "default") -> pb.StatsResponse:
        req = pb.StatsRequest()
        if name is not None:
            req.trace.name = name
            req.trace.namespace = namespace
        return await self._call("Stats", req, pb.StatsResponse)

    async def syscalls(self, klass: str = "") -> pb.SyscallsResponse:
        req = pb.SyscallsRequest(**{"class": klass})
        return await self._call("Syscalls", req, pb.SyscallsResponse)

    async def metrics(self) -> pb.MetricsResponse:
        return await self._call("Metrics", pb.MetricsRequest(), pb.MetricsResponse)

    async def watch(
        self,
        name: str | None = None,
        *,
        namespace: str = "default",
        path: str | None = None,
        format: str = "json",
        parse: bool = True,
        queue: int = 0,
        max_batch: int = 0,
    ) -> AsyncIterator[WatchBatch]:
        """Like :meth:`AgentClient.watch`; leaving the ``async for`` cancels."""
        req = watch_request(name, namespace, path, format, queue, max_batch)
        fn = self._channel.unary_stream(
            SERVICE + "Watch",
            request_serializer=_serialize,
            response_deserializer=pb.WatchResponse.FromString,
        )
        call = fn(req, metadata=self.endpoint.metadata())
        try:
            async for msg in call:
                yield watch_batch(msg, parse, self.endpoint.target)
        except grpc.RpcError as e:
            if e.code() is grpc.StatusCode.CANCELLED:
                return
            raise rpc_error(self.endpoint, e) from None
        finally:
            call.cancel()
