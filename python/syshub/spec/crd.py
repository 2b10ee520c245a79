"""The Trace CustomResourceDefinitions, generated from the pydantic models.

:func:`trace_crd` builds the ``apiextensions.k8s.io/v1`` CRD of one API group (ours,
``syshub.io``, or swoll's ``tools.swoll.criticalstack.com``). Its ``openAPIV3Schema`` is
:func:`~syshub.spec.schema.trace_json_schema` (the Trace model) plus the per-node status the
agents write (:class:`NodeStatus`, also a pydantic model), made *structural* by
:func:`structural`: no ``$ref``, a ``type`` on every node, ``nullable`` instead of
``anyOf [..., null]``, no ``additionalProperties: false`` (pruning does that), metadata
reduced to ``type: object``, and ``x-kubernetes-preserve-unknown-fields`` on the objects whose
model keeps unknown keys (``status``: controllers add their own).

Status layout (see :mod:`syshub.agent.controller`): ``status.nodes`` maps a node name to that
node's :class:`NodeStatus`; each agent writes only its own key. ``state``, ``startTime``,
``completionTime``, ``jobID`` and ``nodeCount`` are derived from the entries. Pure Python.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from syshub.spec.model import API_GROUP, KIND, SWOLL_API_GROUP, VERSION
from syshub.spec.schema import inline_refs, trace_json_schema

__all__ = [
    "GROUPS",
    "PLURAL",
    "NodeStatus",
    "crd_documents",
    "crd_name",
    "crd_yaml",
    "structural",
    "trace_crd",
    "trace_crd_schema",
]

PLURAL: Final = "traces"
SINGULAR: Final = "trace"
#: The groups a Trace CRD can be made for: short name -> API group.
GROUPS: Final[dict[str, str]] = {"syshub": API_GROUP, "swoll": SWOLL_API_GROUP}

_STATES: Final[list[JsonValue]] = ["", "Pending", "Running", "Complete", "Failed"]


class NodeStatus(BaseModel):
    """One node's part of a Trace's status (``status.nodes[<node>]``), written by that node's
    agent only."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={"description": "one node's part of the trace, written by its agent"},
    )

    state: str = Field("Pending", json_schema_extra={"enum": _STATES})
    job_id: str = Field("", alias="jobID", description="the Hub job on this node")
    containers: int = Field(0, ge=0, description="containers traced now")
    matched: int = Field(0, ge=0, description="calls the kernel matched")
    delivered: int = Field(0, ge=0, description="calls routed to the trace")
    dropped: int = Field(0, ge=0, description="calls lost in the kernel (ring full)")
    sampled_out: int = Field(0, ge=0, alias="sampledOut", description="calls left out by rate")
    errors: int = Field(0, ge=0, description="errors on this node (containers not traced...)")
    last_error: str = Field("", alias="lastError", description="the last error, one line")
    start_time: str | None = Field(
        None, alias="startTime", json_schema_extra={"format": "date-time"}
    )
    completion_time: str | None = Field(
        None, alias="completionTime", json_schema_extra={"format": "date-time"}
    )

    if TYPE_CHECKING:  # the Python names (the manifest's camelCase are accepted too)

        def __init__(
            self,
            *,
            state: str = "Pending",
            job_id: str = "",
            containers: int = 0,
            matched: int = 0,
            delivered: int = 0,
            dropped: int = 0,
            sampled_out: int = 0,
            errors: int = 0,
            last_error: str = "",
            start_time: str | None = None,
            completion_time: str | None = None,
        ) -> None: ...

    def to_dict(self) -> dict[str, Any]:
        """The entry as written (camelCase, unset times left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _nullable(branches: list[Any]) -> dict[str, Any] | None:
    """``anyOf [X, {"type": "null"}]`` -> X with ``nullable: true`` (else None)."""
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) == 1 and len(branches) == 2 and isinstance(rest[0], dict):
        return {**rest[0], "nullable": True}
    return None


def structural(schema: dict[str, Any], *, root: bool = True) -> dict[str, Any]:
    """A CRD structural schema from a JSON schema without ``$ref`` (see the module doc).

    A free-form object (no ``properties``, no ``additionalProperties``) keeps unknown fields;
    other objects are pruned to their properties, as the models validate them."""
    node = dict(schema)
    any_of = node.pop("anyOf", None)
    if isinstance(any_of, list):
        merged = _nullable(any_of)
        if merged is None:  # a union a CRD cannot type: keep it, unvalidated
            node.setdefault("x-kubernetes-preserve-unknown-fields", True)
        else:
            node = {**merged, **node}
    node.pop("title", None)
    node.pop("$schema", None)
    forbids_extra = node.pop("additionalProperties", None) is False
    if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        node["additionalProperties"] = structural(schema["additionalProperties"], root=False)
    if isinstance(node.get("items"), dict):
        node["items"] = structural(node["items"], root=False)
    if isinstance(node.get("properties"), dict):
        node["properties"] = {k: structural(v, root=False) for k, v in node["properties"].items()}
    free_form = "properties" not in node and "additionalProperties" not in node
    if node.get("type") == "object" and not root and free_form and not forbids_extra:
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("default") is None:
        node.pop("default", None)
    return node


def trace_crd_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the Trace CRDs (the same for both groups)."""
    schema = structural(trace_json_schema())
    props = schema["properties"]
    # The API server owns metadata; a CRD may only constrain name/generateName.
    props["metadata"] = {"type": "object"}
    # apiVersion and kind are the API server's too (each CRD serves one group).
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    schema["required"] = ["spec"]
    status = props["status"]
    # TraceStatus ignores keys it does not know: other controllers may add theirs.
    status["x-kubernetes-preserve-unknown-fields"] = True
    for key in list(status.get("properties", {})):
        status["properties"][key].pop("default", None)
    node_schema = structural(
        inline_refs(NodeStatus.model_json_schema(by_alias=True, mode="validation")), root=False
    )
    for sub in node_schema["properties"].values():
        sub.pop("default", None)
    status["properties"]["nodes"] = {
        "type": "object",
        "description": "per node: each agent writes only the entry of its own node",
        "additionalProperties": node_schema,
    }
    status["properties"]["nodeCount"] = {
        "type": "integer",
        "description": "nodes that report the trace (entries of nodes)",
    }
    status["properties"]["message"] = {
        "type": "string",
        "description": "why the trace failed, when it did",
    }
    return schema


def crd_name(group: str = API_GROUP) -> str:
    return f"{PLURAL}.{group}"


def _columns(group: str) -> list[dict[str, Any]]:
    if group == SWOLL_API_GROUP:  # swoll's columns first, then ours
        head = [{"name": "Job", "type": "string", "jsonPath": ".status.job"}]
    else:
        head = []
    return [
        *head,
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Syscalls", "type": "string", "jsonPath": ".spec.syscalls"},
        {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodeCount"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def trace_crd(group: str = API_GROUP, version: str = VERSION) -> dict[str, Any]:
    """The ``CustomResourceDefinition`` of the namespaced ``Trace`` kind of ``group``."""
    if group not in GROUPS.values():
        known = ", ".join(GROUPS.values())
        raise ValueError(f"unknown API group {group!r} (expected one of {known})")
    schema = trace_crd_schema()
    if group == SWOLL_API_GROUP:  # swoll's status key names
        status = schema["properties"]["status"]["properties"]
        status["job"] = status.pop("jobID")
        status["completeTime"] = status.pop("completionTime")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": crd_name(group),
            "labels": {"app.kubernetes.io/name": "syshub", "app.kubernetes.io/part-of": "syshub"},
        },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                **({"shortNames": ["tr"]} if group == API_GROUP else {}),
                "categories": ["syshub"],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _columns(group),
                }
            ],
        },
    }


def crd_documents(groups: Iterable[str] = (API_GROUP,)) -> list[dict[str, Any]]:
    """The CRDs of ``groups`` (API group names or the short names of :data:`GROUPS`)."""
    return [trace_crd(GROUPS.get(g, g)) for g in groups]


def crd_yaml(groups: Iterable[str] = (API_GROUP,)) -> str:
    """The CRDs as multi-document YAML."""
    docs = crd_documents(groups)
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
