"""The Trace manifest as JSON schema, ready to become a CRD's ``openAPIV3Schema``.

:func:`trace_json_schema` is pydantic's validation schema of :class:`~syshub.spec.trace.Trace`
with the manifest (camelCase) names and every ``$ref`` inlined, since a CRD schema may not
refer to definitions. It describes the canonical shape :meth:`Trace.to_dict` writes; the loader
is more lenient (a ``fieldSelector`` string, a duration in seconds). Pure Python.
"""

from __future__ import annotations

from typing import Any

from syshub.spec.trace import Trace

__all__ = ["inline_refs", "trace_json_schema"]

_REF_PREFIX = "#/$defs/"


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``{"$ref": "#/$defs/X"}`` replaced by a copy of ``X`` and the
    ``$defs`` dropped (the models here are not recursive); also without pydantic's generated
    ``title`` s and ``null`` defaults, which a CRD does not want."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                target = walk(defs[ref.removeprefix(_REF_PREFIX)])
                extra = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {**target, **extra}
            return {
                k: walk(v)
                for k, v in node.items()
                if k not in ("$defs", "title") and not (k == "default" and v is None)
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def trace_json_schema() -> dict[str, Any]:
    """The Trace manifest schema (JSON Schema 2020-12, no ``$ref``)."""
    return inline_refs(Trace.model_json_schema(by_alias=True, mode="validation"))
