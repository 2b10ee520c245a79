"""Objects, resource types and selector matching for the local API server
(:mod:`support.k8s_apiserver`)."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Pod = dict[str, Any]

_SUPPORTED_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")

# --------------------------------------------------------------------------- selectors
# Deliberately independent of syshub.selectors, so the observer is not tested against
# its own parser.

_SET_TERM = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current = ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    m = _SET_TERM.match(term)
    if m:
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: key not in labels or labels[key] not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (p.strip() for p in term.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: term in labels


def parse_label_selector(selector: str) -> Callable[[Mapping[str, str]], bool]:
    checks = [_label_term(t) for t in _split_terms(selector)]
    return lambda labels: all(check(labels) for check in checks)


def pod_fields(pod: Pod) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName", "") or "",
        "status.phase": (pod.get("status") or {}).get("phase", "") or "",
    }


class BadSelector(ValueError):
    pass


def parse_field_selector(selector: str) -> Callable[[Pod], bool]:
    checks: list[tuple[str, str, bool]] = []
    for term in _split_terms(selector):
        for op in ("!=", "==", "="):
            if op in term:
                key, value = (p.strip() for p in term.split(op, 1))
                break
        else:
            raise BadSelector(f"invalid field selector term {term!r}")
        if key not in _SUPPORTED_FIELDS:
            raise BadSelector(f'field label not supported: "{key}"')
        checks.append((key, value, op == "!="))

    def match(pod: Pod) -> bool:
        fields = pod_fields(pod)
        return all((fields[k] != v) if neg else (fields[k] == v) for k, v, neg in checks)

    return match


# --------------------------------------------------------------------------- helpers


def make_pod(
    name: str,
    namespace: str = "default",
    *,
    uid: str | None = None,
    labels: Mapping[str, str] | None = None,
    node: str = "node-a",
    phase: str = "Running",
    containers: Mapping[str, str] | None = None,
    restart_counts: Mapping[str, int] | None = None,
) -> Pod:
    """A pod manifest shaped like the API server's (``containers``: name -> container id)."""
    containers = dict(containers or {"main": ""})
    restarts = dict(restart_counts or {})
    statuses = [
        {
            "name": cname,
            "containerID": f"containerd://{cid}" if cid else "",
            "restartCount": restarts.get(cname, 0),
            "ready": phase == "Running",
            "image": "busybox:latest",
            "imageID": "",
            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
            if phase == "Running"
            else {"waiting": {"reason": "ContainerCreating"}},
        }
        for cname, cid in containers.items()
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "labels": dict(labels or {}),
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": "busybox:latest"} for c in containers],
        },
        "status": {"phase": phase, "containerStatuses": statuses},
    }


def _merge(dst: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386): dicts merge recursively, ``None`` deletes a key."""
    for key, value in patch.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


# --------------------------------------------------------------------------- resource types


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives and how it behaves."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False
    custom: bool = False  # served from a CRD: generation counts spec changes only

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "pods", "Pod", True, status_subresource=True),
    ResourceType("", "v1", "namespaces", "Namespace", False, status_subresource=True),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "services", "Service", True, status_subresource=True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, status_subresource=True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        status_subresource=True,
    ),
    ResourceType("events.k8s.io", "v1", "events", "Event", True),
)


def crd_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        out.append(
            ResourceType(
                str(spec["group"]),
                str(v["name"]),
                str(names["plural"]),
                str(names["kind"]),
                spec.get("scope", "Namespaced") == "Namespaced",
                status_subresource="status" in (v.get("subresources") or {}),
                custom=True,
            )
        )
    return out


def merge_patch(dst: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``dst`` with the JSON merge patch ``patch`` applied (RFC 7386); ``dst`` is changed."""
    _merge(dst, patch)
    return dst


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
