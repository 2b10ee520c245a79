"""The Kubernetes Trace controller inside every node agent (``syshub agent --kubernetes``).

Kubernetes does the distribution: every agent watches the Trace objects (one shared watch
per API group: LIST, WATCH with resourceVersion and bookmarks, relist on 410; cluster-wide
or in one namespace) and runs each one's job on its own Hub, whose observer already narrows
pods to this node. Nothing coordinates the agents but the API server:

* status: each agent writes only ``status.nodes[<its node>]`` (state, containers traced,
  matched / delivered / dropped / sampled-out, errors, last error) with server-side apply
  under its field manager ``syshub-agent-<node>``; the overall state and completion are
  derived from the entries (:mod:`.status`);
* the overall fields have one writer in the normal case (a per-Trace ranking of the nodes
  with an entry, with takeover when the writer stays silent), and a Trace no pod matches
  anywhere is reported by one node (Running with 0 containers, then Complete), never left
  Pending;
* Kubernetes Events on the Trace: Started, Completed, InvalidTrace (unknown syscall, bad
  selector...), StartFailed, TraceError (a container the kernel refused to filter), FilterLimit
  (the same when the node's filter keys ran out: ``max_filter_keys`` or a full map),
  CRIUnreadable / CRIReadable (:mod:`.cri_health`), NoMatchingPods;
* deleting a Trace stops its job: its kernel filters go at once;
* each trace's events are JSON lines on stdout, labelled with the trace (``kubectl logs``);
* restarting the agent resumes the Traces that exist (the rest of their duration).

Modules: :mod:`.controller` (:class:`Controller`), :mod:`.watcher`, :mod:`.runs`,
:mod:`.status`, :mod:`.report`, :mod:`.kube`, :mod:`.cri_health`. Needs the ``kubernetes`` package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from syshub.agent.controller.controller import Controller

if TYPE_CHECKING:
    from syshub.agent.server import Agent

__all__ = ["Controller", "KubernetesComponent", "component"]

#: Setting (config key / env SYSHUB_AGENT_K8S_GROUPS) naming the groups to watch.
GROUPS_SETTING: Final = "k8s_groups"


def _groups(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(g.strip() for g in value.split(",") if g.strip())
    if isinstance(value, list | tuple):
        return tuple(str(g) for g in value)
    return ("syshub",)


class KubernetesComponent:
    """The agent component that runs a :class:`Controller` on the agent's Hub."""

    name = "kubernetes"

    def __init__(self, agent: Agent) -> None:
        self.controller: Controller | None = None
        cfg: Any = agent.config
        self.endpoint: str | None = getattr(cfg, "k8s_endpoint", None)
        self.node_name = str(getattr(cfg, "node_name", None) or "")
        namespace = getattr(cfg, "k8s_trace_namespace", None) or getattr(cfg, "k8s_namespace", None)
        self.namespace: str | None = str(namespace) if namespace else None
        self.groups = _groups(getattr(cfg, GROUPS_SETTING, None) or "syshub")

    def start(self, agent: Agent) -> None:
        from syshub.topology.kubernetes import DEFAULT_CRI_ENDPOINT, KubernetesObserver

        cri = None
        if isinstance(agent.hub.observer, KubernetesObserver):  # containers from the CRI
            cri = getattr(agent.config, "cri_endpoint", None) or DEFAULT_CRI_ENDPOINT
        self.controller = Controller(
            agent.hub,
            self.endpoint,
            self.node_name,
            self.namespace,
            self.groups,
            registry=agent.traces,
            cri_endpoint=cri,
        ).start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


def component(agent: Agent) -> KubernetesComponent:
    return KubernetesComponent(agent)
