"""The Watch streams of several agents merged into one iterator (a thread per
agent). Every event document gets ``node``: the agent's node name."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Sequence
from typing import Any

import grpc

from syshub.client.channel import rpc_error
from syshub.client.messages import WatchBatch, watch_batch
from syshub.client.sync import AgentClient


def _with_node(batch: WatchBatch) -> WatchBatch:
    for ev in batch.events:
        ev["node"] = batch.node
    return batch


def merge_watch(
    clients: Sequence[AgentClient], *, parse: bool = True, **watch: Any
) -> Generator[WatchBatch | Exception, None, None]:
    """Batches of every agent as they come (each agent's in order); a failing
    agent yields its :class:`~syshub.client.AgentError` and the others go on.
    The streams open at once (before the first ``next``); the iterator ends
    when every stream ended; closing it cancels them all."""
    q: queue.Queue[WatchBatch | Exception | None] = queue.Queue(maxsize=64)
    calls: list[grpc.Call] = []
    stop = threading.Event()

    def put(item: WatchBatch | Exception | None) -> None:
        """Queue ``item`` unless the consumer has gone (never blocks for good)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def pump(client: AgentClient, call: Any) -> None:
        try:
            for msg in call:
                put(_with_node(watch_batch(msg, parse, client.endpoint.target)))
        except grpc.RpcError as e:
            put(rpc_error(client.endpoint, e))
        finally:
            put(None)

    threads = []
    for c in clients:
        call = c.watch_raw(**watch)
        calls.append(call)
        t = threading.Thread(target=pump, args=(c, call), name="syshub-watch", daemon=True)
        threads.append(t)
    for t in threads:
        t.start()
    return _merged(q, len(threads), stop, calls, threads)


def _merged(
    q: queue.Queue[WatchBatch | Exception | None],
    running: int,
    stop: threading.Event,
    calls: list[Any],
    threads: list[threading.Thread],
) -> Generator[WatchBatch | Exception, None, None]:
    try:
        while running:
            item = q.get()
            if item is None:
                running -= 1
                continue
            yield item
    finally:
        stop.set()
        for call in calls:
            call.cancel()
        for t in threads:
            t.join(timeout=1)
