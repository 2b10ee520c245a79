"""Request routing of the local API server: paths to resource types, discovery documents, and
the write verbs (POST, PUT, PATCH, DELETE) over :mod:`support.k8s_store`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from support.k8s_objects import ResourceType
from support.k8s_store import ApiError

if TYPE_CHECKING:
    from support.k8s_apiserver import FakeApiServer

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH_TYPES = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


@dataclass(frozen=True)
class Route:
    """A resource path: type, namespace (None: all or cluster-scoped), name, subresource."""

    rt: ResourceType
    namespace: str | None
    name: str
    sub: str


def parse_path(api: FakeApiServer, path: str) -> Route | None:
    """``/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]`` or the ``/apis/G/V/...`` form."""
    seg = [s for s in path.split("/") if s]
    if seg[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", seg[2:]
    elif len(seg) >= 3 and seg[0] == "apis":
        group, version, rest = seg[1], seg[2], seg[3:]
    else:
        return None
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = api.resource_type(group, version, rest[0])
    if rt is None:
        return None
    if namespace is not None and not rt.namespaced:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return Route(rt, namespace, name, sub)


def discovery(api: FakeApiServer, path: str) -> Any | None:
    """``/api``, ``/api/v1``, ``/apis`` and ``/apis/G/V``; None for other paths."""
    types = api.resource_types()
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"]}

    def resources(group: str, version: str) -> dict[str, Any]:
        listed = [
            {
                "name": t.plural,
                "singularName": t.kind.lower(),
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for t in types
            if (t.group, t.version) == (group, version)
        ]
        listed += [
            {
                "name": f"{t.plural}/status",
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }
            for t in types
            if (t.group, t.version) == (group, version) and t.status_subresource
        ]
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "groupVersion": gv, "resources": listed}

    if path == "/api/v1":
        return resources("", "v1")
    if path == "/apis":
        groups: dict[str, list[str]] = {}
        for t in types:
            if t.group and t.version not in groups.setdefault(t.group, []):
                groups[t.group].append(t.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }
    seg = [s for s in path.split("/") if s]
    if len(seg) == 3 and seg[0] == "apis":
        if not any((t.group, t.version) == (seg[1], seg[2]) for t in types):
            return None
        return resources(seg[1], seg[2])
    return None


def decode_body(raw: bytes, content_type: str) -> Any:
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest", f"cannot decode the body: {exc}") from None


def write(
    api: FakeApiServer,
    method: str,
    route: Route,
    body: Any,
    content_type: str,
    params: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """POST / PUT / PATCH / DELETE on ``route``: (HTTP status, response object); ``params``:
    the query (``fieldManager``, ``force`` of an apply)."""
    params = params or {}
    manager = params.get("fieldManager") or None
    rt = route.rt
    if method == "POST":
        if route.name or route.sub:
            raise ApiError(405, "MethodNotAllowed", "POST goes to the collection")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        if rt.namespaced and route.namespace is None:
            raise ApiError(404, "NotFound", f"{rt.plural} are namespaced")
        ns = (body.get("metadata") or {}).get("namespace")
        if ns and route.namespace and ns != route.namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        return 201, api.create(rt, body, route.namespace)
    if not route.name:
        raise ApiError(405, "MethodNotAllowed", f"{method} needs an object name")
    if method == "DELETE":
        obj = api.delete(rt, route.namespace, route.name)
        return 200, obj
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body must be an object")
    if method == "PUT":
        return 200, api.update(rt, route.namespace, route.name, body, route.sub, manager)
    base = content_type.split(";")[0].strip()
    if base == APPLY_PATCH:
        if not manager:
            raise ApiError(422, "Invalid", "fieldManager: Required value: is required for apply")
        force = params.get("force", "") in ("1", "true", "True")
        return 200, api.apply(rt, route.namespace, route.name, body, route.sub, manager, force)
    if base not in MERGE_PATCH_TYPES:
        raise ApiError(
            415, "UnsupportedMediaType", f"the local API server does not take {base} patches"
        )
    return 200, api.patch(rt, route.namespace, route.name, body, route.sub, manager)


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
