"""Extra parts of the agent that live as long as it does (the Kubernetes Trace
controller, the ``/metrics`` endpoint): each is started once the Hub runs and
before the agent serves, and stopped, in reverse order, before the Hub stops.
A component module exposes ``component(agent) -> Component``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from syshub.agent.config import AgentConfigError

if TYPE_CHECKING:
    from syshub.agent.server import Agent

#: setting -> module whose ``component(agent)`` builds it
KUBERNETES_MODULE: Final = "syshub.agent.controller"
METRICS_MODULE: Final = "syshub.metrics.http"


@runtime_checkable
class Component(Protocol):
    name: str

    def start(self, agent: Agent) -> None: ...

    def stop(self) -> None: ...


def load_component(module: str, agent: Agent, setting: str) -> Component:
    """``module.component(agent)``; a missing module is a one-line error."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise AgentConfigError(f"{setting}: {module} is not available ({e})") from None
    factory = getattr(mod, "component", None)
    if factory is None:
        raise AgentConfigError(f"{setting}: {module} has no component(agent) function")
    comp = factory(agent)
    if not isinstance(comp, Component):
        raise AgentConfigError(f"{setting}: {module}.component() did not return a Component")
    return comp


def configured_components(agent: Agent) -> list[Component]:
    """The components the agent's configuration asks for."""
    cfg = agent.config
    out: list[Component] = []
    if cfg.kubernetes:
        out.append(load_component(KUBERNETES_MODULE, agent, "kubernetes"))
    if cfg.metrics_port is not None:
        out.append(load_component(METRICS_MODULE, agent, "metrics_port"))
    return out
