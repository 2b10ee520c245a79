"""A small cluster on one machine for the controller tests: the local API server with the
Trace CRDs, "nodes" that are each a Hub (real kernel probe) with a KubernetesObserver narrowed
to the node's name plus a Trace :class:`~syshub.agent.controller.Controller`, and pods that
really run in the test containerd with the kubelet's labels and are published to the API
server as scheduled on one node. Each node's controller writes its JSON lines into the log of
an agent pod of the API server, so ``syshub run`` can follow them as on a cluster."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

from support.k8s_apiserver import FakeApiServer
from support.k8s_objects import make_pod
from syshub import Hub, HubConfig
from syshub.agent.controller import Controller
from syshub.spec.crd import crd_yaml
from syshub.topology.kubernetes import KubernetesObserver
from syshub.topology.kubernetes.watch import Backoff

if TYPE_CHECKING:
    from support.containerd import ContainerdEnv

TRACES = "traces.syshub.io"
AGENT_NS = "syshub"
AGENT_LABELS = {"app.kubernetes.io/name": "syshub-agent"}
WORKLOAD = ["sh", "-c", "while true; do cat /etc/hostname >/dev/null; sleep 0.2; done"]


def wait_until(pred: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step)
    return pred()


def install_crds(api: FakeApiServer) -> None:
    rt = api.resource_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert rt is not None
    for doc in yaml.safe_load_all(crd_yaml(["syshub", "swoll"])):
        api.create(rt, doc)


class AgentLog:
    """A text stream that appends to an agent pod's log in the API server."""

    def __init__(self, api: FakeApiServer, pod: str) -> None:
        self.api = api
        self.pod = pod

    def write(self, text: str) -> int:
        self.api.append_log(AGENT_NS, self.pod, text)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        return self.api.log_text(AGENT_NS, self.pod).splitlines()


class Node:
    """One node: a Hub on the real probe, its pods from the API server, a controller."""

    def __init__(self, api: FakeApiServer, containerd: ContainerdEnv, name: str) -> None:
        self.api = api
        self.name = name
        self.agent_pod = f"syshub-agent-{name}"
        api.create_pod(
            make_pod(self.agent_pod, AGENT_NS, labels=AGENT_LABELS, node=name, phase="Running")
        )
        self.log = AgentLog(api, self.agent_pod)
        self.cri_endpoint = containerd.endpoint
        observer = KubernetesObserver(
            api.url,
            cri_endpoint=containerd.endpoint,
            node_name=name,
            resync_interval=0.5,
            backoff_initial=0.05,
            backoff_max=0.5,
            poll_interval=0.02,
            request_timeout=5.0,
        )
        self.hub = Hub(HubConfig(), observer).start()
        self.controller: Controller | None = None

    def start_controller(self, **kw: Any) -> Controller:
        """Start (or restart) the node's controller; options given once are kept."""
        self._kw = kw = {**getattr(self, "_kw", {}), **kw}
        opts: dict[str, Any] = {
            "out": self.log,
            "status_interval": 0.5,
            "tick": 0.1,
            "backoff": Backoff(0.05, 0.5),
            "watch_timeout": 30,
            "request_timeout": 5.0,
            "cri_endpoint": self.cri_endpoint,
            "cri_interval": 0.3,
            "takeover": 1.0,
            "no_match_delay": 0.5,
        }
        opts.update(kw)
        self.controller = Controller(self.hub, self.api.url, self.name, **opts).start()
        assert self.controller.wait_synced(10), f"{self.name}: the first LIST never came"
        return self.controller

    def stop_controller(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def filter_namespaces(self) -> set[int]:
        probe = self.hub.probe
        assert probe is not None
        return {f.pid_ns for f in probe.filters()}

    def close(self) -> None:
        self.stop_controller()
        self.hub.stop()


class ClusterPod:
    """A pod running in containerd (kubelet labels) and published on ``node``."""

    def __init__(
        self,
        env: ContainerdEnv,
        api: FakeApiServer,
        name: str,
        node: str,
        labels: dict[str, str],
        namespace: str = "default",
    ) -> None:
        self.env, self.api, self.name, self.namespace = env, api, name, namespace
        self.uid = str(uuid.uuid4())
        self.sandbox = env.run_pod(name, namespace, labels=labels, uid=self.uid)
        self.container = env.run_container(self.sandbox, "worker", WORKLOAD)
        api.create_pod(
            make_pod(
                name,
                namespace,
                uid=self.uid,
                labels=labels,
                node=node,
                containers={"worker": self.container},
            )
        )

    @property
    def pid_ns(self) -> int:
        return os.stat(f"/proc/{self.env.container_pid(self.container)}/ns/pid").st_ino

    def remove(self) -> None:
        with contextlib.suppress(KeyError):
            self.api.delete_pod(self.namespace, self.name)
        self.env.remove_pod(self.sandbox)


def trace_manifest(name: str, syscalls: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "syshub.io/v1alpha1",
        "kind": "Trace",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"syscalls": syscalls, "labelSelector": {"matchLabels": {"app": "web"}}, **spec},
    }


def create_trace(api: FakeApiServer, manifest: dict[str, Any]) -> dict[str, Any]:
    return api.create(api.type_by_key(TRACES), manifest, manifest["metadata"]["namespace"])


def get_trace(api: FakeApiServer, name: str) -> dict[str, Any]:
    return api.get_object(TRACES, "default", name)


def entries(api: FakeApiServer, name: str) -> dict[str, dict[str, Any]]:
    try:
        obj = get_trace(api, name)
    except Exception:
        return {}
    return dict((obj.get("status") or {}).get("nodes") or {})


def events(api: FakeApiServer, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [e for e in api.events_about(name, "default") if reason in (None, e["reason"])]
