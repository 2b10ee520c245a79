"""Shared by the kernel tests and the conformance tool: collect a probe's
events until everything the kernel emitted has been delivered."""

from __future__ import annotations

import time
from typing import Any


def drain(probe: Any, until_idle_ms: int = 300, timeout: float = 10.0) -> list[Any]:
    """Poll until every emitted record was delivered and nothing more arrives."""
    events: list[Any] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        b = probe.poll(timeout_ms=until_idle_ms)
        events.extend(b)
        if not b and probe.stats().drained:
            break
    return events
