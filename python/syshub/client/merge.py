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
    Ends when every stream ended; closing the iterator cancels them all."""
    q: queue.Queue[WatchBatch | Exception | None] = queue.Queue(maxsize=64)
    calls: list[grpc.Call] = []
    stop = threading.Event()

    def pump(client: AgentClient, call: Any) -> None:
        try:
            for msg in call:
                if stop.is_set():
                    return
                q.put(_with_node(watch_batch(msg, parse, client.endpoint.target)))
        except grpc.RpcError as e:
            if not stop.is_set():
                q.put(rpc_error(client.endpoint, e))
        finally:
            q.put(None)

    threads = []
    for c in clients:
        call = c.watch_raw(**watch)
        calls.append(call)
        t = threading.Thread(target=pump, args=(c, call), name="syshub-watch", daemon=True)
        threads.append(t)
    for t in threads:
        t.start()
    running = len(threads)
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
        while running:  # let the pumps finish their last put
            try:
                if q.get(timeout=1) is None:
                    running -= 1
            except queue.Empty:
                break
