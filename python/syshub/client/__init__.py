"""Clients of the node agent (``syshub agent``): :class:`AgentClient`
(blocking) and :class:`AsyncAgentClient` (asyncio), one agent each;
:func:`merge_watch` merges the Watch streams of several agents. Events come as
the same documents in-process subscribers get (``TraceEvent.to_dict()``).
Needs ``pip install 'syshub[agent]'``."""

from __future__ import annotations

from syshub.client.aio import AsyncAgentClient
from syshub.client.channel import DEFAULT_AGENT, AgentError, Endpoint, endpoint
from syshub.client.merge import merge_watch
from syshub.client.messages import StreamCounters, WatchBatch
from syshub.client.sync import AgentClient

__all__ = [
    "DEFAULT_AGENT",
    "AgentClient",
    "AgentError",
    "AsyncAgentClient",
    "Endpoint",
    "StreamCounters",
    "WatchBatch",
    "endpoint",
    "merge_watch",
]
