"""What the controller tells people: Kubernetes Events on a Trace, and the trace's events as
JSON lines on the agent's stdout (``kubectl logs`` shows them; ``syshub run`` follows them).

Each stdout line is ``{"trace": "<ns>/<name>", "group": ..., "job": ..., "node": ...,
"text": "<strace line>", "event": {...}}`` where ``event`` is :meth:`TraceEvent.to_dict` (the
one event document) and ``job`` the job id every node uses for this Trace object.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Final, TextIO

from syshub.agent.controller.status import now_text
from syshub.hub import Subscription

log = logging.getLogger("syshub.agent.controller")

COMPONENT: Final = "syshub-agent"
NORMAL: Final = "Normal"
WARNING: Final = "Warning"


def event_body(
    obj: Mapping[str, Any], node: str, kind: str, reason: str, message: str
) -> dict[str, Any]:
    """A core/v1 Event about the Trace ``obj``, reported by this node's agent."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", "default"))
    now = now_text()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name[:200]}.{uuid.uuid4().hex[:16]}",
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": str(obj.get("apiVersion", "")),
            "kind": str(obj.get("kind", "Trace")),
            "name": name,
            "namespace": namespace,
            "uid": str(meta.get("uid", "")),
            "resourceVersion": str(meta.get("resourceVersion", "")),
        },
        "reason": reason,
        "message": f"{node}: {message}"[:1024],
        "type": kind,
        "source": {"component": COMPONENT, "host": node},
        "reportingComponent": COMPONENT,
        "reportingInstance": node,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class JsonLines:
    """Writes whole lines to one text stream from many threads (one lock)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()
        self.failed = False

    def write(self, lines: list[str]) -> None:
        if not lines or self.failed:
            return
        text = "".join(line + "\n" for line in lines)
        with self._lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError) as exc:
                self.failed = True  # stdout gone: stop writing, keep tracing
                log.warning("cannot write trace events to stdout: %s", exc)


class EventPrinter:
    """A thread that prints one job's events as labelled JSON lines until its subscription
    is closed and drained."""

    def __init__(
        self, sub: Subscription, lines: JsonLines, label: Mapping[str, str], name: str
    ) -> None:
        self.sub = sub
        self.lines = lines
        self.prefix = json.dumps(dict(label), separators=(",", ":"))[:-1]
        self.printed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sub = self.sub
        while True:
            batch = sub.get_batch(4096, timeout=0.2)
            if batch:
                self.lines.write(
                    [
                        self.prefix
                        + ',"text":'
                        + json.dumps(ev.to_text())
                        + ',"event":'
                        + json.dumps(ev.to_dict(), separators=(",", ":"), default=str)
                        + "}"
                        for ev in batch
                    ]
                )
                self.printed += len(batch)
            elif sub.closed:
                return

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
