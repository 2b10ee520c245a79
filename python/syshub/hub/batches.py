"""The Hub's batch mode: subscriptions that receive :class:`EventChunk` s
(a poll's batch, the selected index ranges, the containers) instead of one
:class:`~syshub.hub.events.TraceEvent` per event. The CLI's output and the
agent's streams encode chunks in Rust (``chunk.to_json()``, ``to_text()``,
``to_proto()``), so no Python object is made per event.

:class:`BatchSubscribing` is a mixin of :class:`~syshub.hub.service.Hub`;
the queues are :class:`BatchSubscription` s in the router's tables, so the
Hub's accounting (``Hub.stats()``), ``delete_trace`` and ``stop`` treat them
as any subscription.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from syshub.hub.jobs import Job
from syshub.hub.router import Router, path_key
from syshub.hub.subscriptions import BatchSubscription, EventChunk, Overflow, Subscription
from syshub.probe import Batch, Chunk
from syshub.probe import encode_chunks as _encode_native
from syshub.probe import write_chunks as _write_native

if TYPE_CHECKING:
    from syshub.spec.trace import Trace

__all__ = [
    "BatchSubscribing",
    "BatchSubscription",
    "EventChunk",
    "encode_chunks",
    "write_chunks",
]


def _batched(sub: Subscription) -> BatchSubscription:
    assert isinstance(sub, BatchSubscription)
    return sub


class BatchSubscribing:
    """Batch-mode subscriptions of a Hub (``self._router``, ``self.job``
    and ``self._job_id`` are the Hub's)."""

    if TYPE_CHECKING:
        _router: Router

        def job(self, job_id: str) -> Job: ...

        def _job_id(self, target: Trace | Job | str) -> str: ...

    def subscribe_batches(
        self,
        target: Trace | Job | str,
        *,
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> BatchSubscription:
        """Like ``Hub.subscribe`` (a :class:`Job` not yet run may be
        subscribed to), but the queue holds chunks; ``maxsize`` counts events
        and drops are counted per event."""
        job_id = target.job_id if isinstance(target, Job) else self.job(self._job_id(target)).job_id
        return _batched(
            self._router.subscribe("job_subs", job_id, job_id, maxsize, overflow, batch=True)
        )

    def subscribe_path_batches(
        self,
        path: Iterable[str] = (),
        *,
        name: str = "",
        maxsize: int = 65536,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
    ) -> BatchSubscription:
        """Like ``Hub.subscribe_path``: chunks of the events below a
        (namespace, pod, container, syscall) prefix."""
        key = path_key(path)
        return _batched(
            self._router.subscribe(
                "path_subs", key, name or "/".join(key), maxsize, overflow, batch=True
            )
        )


def _native_chunks(chunks: Sequence[EventChunk]) -> list[Chunk] | None:
    """The chunks as (batch, ranges, container documents) for the Rust
    encoders; None when one holds event objects instead of a probe batch."""
    out: list[Chunk] = []
    for c in chunks:
        if not isinstance(c.batch, Batch):
            return None
        docs = {ns: k.to_dict() if k is not None else None for ns, k in c.containers.items()}
        out.append((c.batch, c.ranges, docs))
    return out


def encode_chunks(
    chunks: Sequence[EventChunk],
    fmt: str,
    *,
    node: str | None = None,
    field: int = 0,
    prefix: bytes = b"",
) -> bytes:
    """Chunks as one output of ``fmt`` (json, text, proto, records) in one
    Rust call, returned after ``prefix`` and framed as length-delimited field
    ``field`` of a message when ``field`` > 0 (a whole serialized message in
    one copy). Chunks of event objects (tests, ``Hub.write_event``) go
    through their own encoders (json and text; proto and records need probe
    batches: TypeError, as ``EventChunk.to_proto``)."""
    native = _native_chunks(chunks)
    if native is not None:
        return _encode_native(fmt, native, node=node, field=field, prefix=prefix)
    if fmt in ("proto", "records"):
        raise TypeError(f"only chunks of a probe Batch encode to {fmt}")
    if fmt == "json":
        body = b"".join([c.to_json(node=node) for c in chunks])
    else:
        body = b"".join([c.to_text() for c in chunks])
    return prefix + (_frame(field, body) if field else body)


def write_chunks(fd: int, chunks: Sequence[EventChunk], fmt: str, node: str | None = None) -> bool:
    """Encode (json or text) and write the chunks to file descriptor ``fd``
    in one Rust call (no bytes object in Python); False, writing nothing,
    when a chunk holds event objects (then use :func:`encode_chunks`).
    OSError as write(2) raises it."""
    native = _native_chunks(chunks)
    if native is None:
        return False
    _write_native(fd, fmt, native, node=node)
    return True


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _frame(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload
