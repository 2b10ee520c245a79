"""The Trace CRDs: generated from the model, structural, accepted by the Kubernetes schema of
CustomResourceDefinition (kubernetes-validate), and agreeing with real manifests; ``syshub
crd`` prints them; the local API server serves the group once the CRD is created."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support.k8s_apiserver import FakeApiServer
from support.spec_env import OUR_MANIFEST, SWOLL_MANIFEST, resolve
from syshub.cli.main import main
from syshub.spec import Trace
from syshub.spec.crd import NodeStatus, crd_documents, crd_yaml, structural, trace_crd

jsonschema = pytest.importorskip("jsonschema")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S_VERSION = "1.30.0"
TYPELESS_OK = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


def _nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _schema(group: str = "syshub.io") -> dict[str, Any]:
    schema: dict[str, Any] = trace_crd(group)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("group", ["syshub.io", "tools.swoll.criticalstack.com"])
def test_crd_is_a_valid_kubernetes_object(group: str) -> None:
    crd = trace_crd(group)
    kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == f"traces.{group}"
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["State"] == ".status.state"
    assert columns["Syscalls"] == ".spec.syscalls"
    assert columns["Nodes"] == ".status.nodeCount"
    assert columns["Age"] == ".metadata.creationTimestamp"
    if group.startswith("tools.swoll"):
        assert columns["Job"] == ".status.job"


@pytest.mark.parametrize("group", ["syshub.io", "tools.swoll.criticalstack.com"])
def test_schema_is_structural(group: str) -> None:
    schema = _schema(group)
    assert "$ref" not in str(schema) and "$defs" not in str(schema)
    for path, node in _nodes(schema):
        assert "type" in node or any(node.get(k) for k in TYPELESS_OK), path
        assert node.get("additionalProperties") is not False, path
        for key in ("anyOf", "oneOf", "allOf", "not", "title"):
            assert key not in node, (path, key)
        if "properties" in node:
            assert "additionalProperties" not in node, path
    assert schema["properties"]["metadata"] == {"type": "object"}
    status = schema["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    # the spec is pruned to the model's fields (it forbids unknown keys)
    assert "x-kubernetes-preserve-unknown-fields" not in schema["properties"]["spec"]


def test_schema_comes_from_the_model() -> None:
    """Every spec field of the model, with its alias, and the node entry's fields."""
    spec = _schema()["properties"]["spec"]["properties"]
    assert set(spec) == {
        "syscalls",
        "labelSelector",
        "fieldSelector",
        "hostSelector",
        "sampleRate",
        "duration",
    }
    nodes = _schema()["properties"]["status"]["properties"]["nodes"]["additionalProperties"]
    aliases = {f.alias or n for n, f in NodeStatus.model_fields.items()}
    assert set(nodes["properties"]) == aliases
    swoll_status = _schema("tools.swoll.criticalstack.com")["properties"]["status"]["properties"]
    assert "job" in swoll_status and "completeTime" in swoll_status


def test_structural_nullable_and_free_form() -> None:
    got = structural(
        {
            "type": "object",
            "properties": {
                "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "A"},
                "b": {"type": "object"},
                "c": {"type": "object", "additionalProperties": False, "properties": {}},
            },
        }
    )
    assert got["properties"]["a"] == {"type": "string", "nullable": True}
    assert got["properties"]["b"]["x-kubernetes-preserve-unknown-fields"] is True
    assert got["properties"]["c"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize("text", [OUR_MANIFEST, SWOLL_MANIFEST])
def test_manifests_validate_against_the_crd_schema(text: str) -> None:
    doc = Trace.from_yaml(text, resolve).to_dict()  # the canonical shape the CRD describes
    group = doc["apiVersion"].split("/")[0]
    doc.setdefault("status", {})["nodes"] = {
        "node-a": NodeStatus(state="Running", job_id="j-1", containers=2, matched=5).to_dict()
    }
    jsonschema.validate(doc, _schema(group))
    bad = dict(doc, spec={**doc["spec"], "sampleRate": -1})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema(group))


def test_syshub_crd_prints_the_crds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert docs == crd_documents(["syshub"])
    assert main(["crd", "--group", "all"]) == 0
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert names == ["traces.syshub.io", "traces.tools.swoll.criticalstack.com"]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(["crd", "--group", "nope"]) == 2
    assert "invalid choice" in err.getvalue()


def test_local_api_server_serves_the_crd_group() -> None:
    kubernetes = pytest.importorskip("kubernetes")
    with FakeApiServer() as api:
        cfg = kubernetes.client.Configuration()
        cfg.host = api.url
        with kubernetes.client.ApiClient(cfg) as client:
            ext = kubernetes.client.ApiextensionsV1Api(client)
            for doc in yaml.safe_load_all(crd_yaml(["syshub", "swoll"])):
                ext.create_custom_resource_definition(doc)
            custom = kubernetes.client.CustomObjectsApi(client)
            manifest = Trace.from_yaml(OUR_MANIFEST, resolve).to_dict()
            manifest["status"] = {"state": "Running"}
            made = custom.create_namespaced_custom_object(
                "syshub.io", "v1alpha1", manifest["metadata"]["namespace"], "traces", manifest
            )
            assert "status" not in made  # the status subresource owns it
            assert made["metadata"]["generation"] == 1
            listed = custom.list_cluster_custom_object("syshub.io", "v1alpha1", "traces")
            assert [i["metadata"]["name"] for i in listed["items"]] == [
                manifest["metadata"]["name"]
            ]
            groups = kubernetes.client.ApisApi(client).get_api_versions()
            assert {"syshub.io", "tools.swoll.criticalstack.com"} <= {g.name for g in groups.groups}
