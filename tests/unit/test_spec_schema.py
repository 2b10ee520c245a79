"""The Trace manifest JSON schema: valid JSON Schema, camelCase names, no $ref (a CRD cannot
use them), a type on every node (a CRD's structural schema needs one), and it agrees with the
loader on real manifests.

The metaschema and instance checks use the ``jsonschema`` package (in the test venv; a venv
without it skips only those, with the reason)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support.spec_env import OUR_MANIFEST, SWOLL_MANIFEST, manifest, resolve
from syshub.spec import Capture, Trace, trace_json_schema
from syshub.spec.schema import inline_refs

CAMEL_NAMES = {
    "apiVersion",
    "labelSelector",
    "fieldSelector",
    "hostSelector",
    "sampleRate",
    "matchLabels",
    "matchExpressions",
    "resourceVersion",
    "creationTimestamp",
    "jobID",
    "startTime",
    "completionTime",
}


def _nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object with its path (properties, items, additionalProperties)."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _property_names(schema: dict[str, Any]) -> set[str]:
    return {path.rsplit(".", 1)[-1] for path, _ in _nodes(schema) if path}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return trace_json_schema()


@pytest.fixture
def jsonschema() -> Any:
    return pytest.importorskip("jsonschema", reason="the jsonschema package validates schemas")


def test_schema_is_valid_json_schema(schema: dict[str, Any], jsonschema: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(schema)  # plain data, serializable as is


def test_schema_uses_the_manifest_names(schema: dict[str, Any]) -> None:
    names = _property_names(schema)
    assert names >= CAMEL_NAMES
    assert not {n for n in names if "_" in n}, "no snake_case property names"
    assert schema["required"] == ["apiVersion", "kind", "metadata", "spec"]
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["syscalls"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["sampleRate"]["maximum"] == 2**32 - 1
    assert spec["properties"]["duration"] == {
        "type": "string",
        "description": "complete the trace after this long (0s or absent: no limit)",
    }
    assert schema["properties"]["apiVersion"]["enum"] == [
        "syshub.io/v1alpha1",
        "tools.swoll.criticalstack.com/v1alpha1",
    ]


def test_schema_is_crd_ready(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert "$ref" not in text
    assert "$defs" not in text
    assert "anyOf" not in text
    assert '"title"' not in text
    for path, node in _nodes(schema):
        assert "type" in node, f"no type at {path or 'the root'}"


@pytest.mark.parametrize("text", [OUR_MANIFEST, SWOLL_MANIFEST])
def test_written_manifests_validate(schema: dict[str, Any], jsonschema: Any, text: str) -> None:
    trace = Trace.from_yaml(text, resolve=resolve)
    trace.mark_running("x-12345678")
    jsonschema.validate(trace.to_dict(), schema)


def test_swoll_manifest_validates_unchanged(schema: dict[str, Any], jsonschema: Any) -> None:
    jsonschema.validate(yaml.safe_load(SWOLL_MANIFEST), schema)


@pytest.mark.parametrize(
    "doc",
    [
        manifest(sampleRate=-1),
        manifest(sampleRte=2),
        manifest(syscalls="read"),
        manifest(labelSelector={"matchExpressions": [{"key": "a", "operator": "Gt"}]}),
        {**manifest(), "apiVersion": "v1"},
        {**manifest(), "kind": "Pod"},
        {k: v for k, v in manifest().items() if k != "spec"},
    ],
)
def test_schema_rejects_what_the_loader_rejects(
    schema: dict[str, Any], jsonschema: Any, doc: Any
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    with pytest.raises(ValueError):
        Trace.from_dict(doc, resolve=resolve)


def test_model_json_schema_and_inlining() -> None:
    raw = Trace.model_json_schema(by_alias=True)
    assert "$defs" in raw  # pydantic's own form, with definitions
    assert inline_refs(raw) == trace_json_schema()
    capture = inline_refs(Capture.model_json_schema())
    assert set(capture["properties"]) == {"strMax", "argvMax", "bufMax", "durations"}
    assert capture["properties"]["strMax"]["maximum"] == 4096
