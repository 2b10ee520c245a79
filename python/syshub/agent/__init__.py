"""The node agent (``syshub agent``): one Hub per node behind the
``syshub.v1.Agent`` gRPC service (``proto/syshub/v1/agent.proto``).

Modules: :mod:`~syshub.agent.config` (settings: file, environment, flags),
:mod:`~syshub.agent.server` (the :class:`Agent`: Hub, servers, shutdown),
:mod:`~syshub.agent.service` (the gRPC methods), :mod:`~syshub.agent.requests`
(request checks and their status codes), :mod:`~syshub.agent.traces` (the
agent's traces), :mod:`~syshub.agent.streams` (Watch streams, bounded and
counted), :mod:`~syshub.agent.auth` (TLS, tokens), :mod:`~syshub.agent.components`
(extra parts: Kubernetes controller, metrics). Needs ``pip install 'syshub[agent]'``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syshub.agent.components import Component
    from syshub.agent.config import AgentConfig, AgentConfigError, build_config
    from syshub.agent.server import Agent

_EXPORTS = {
    "Agent": "syshub.agent.server",
    "AgentConfig": "syshub.agent.config",
    "AgentConfigError": "syshub.agent.config",
    "build_config": "syshub.agent.config",
    "Component": "syshub.agent.components",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'syshub.agent' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["Agent", "AgentConfig", "AgentConfigError", "Component", "build_config"]
