"""Server-side apply in the local API server (tests/support/k8s_apply.py), through the real
``kubernetes`` client on the status subresource of a Trace: per-manager ownership of
``status.nodes.<node>``, conflicts with another manager's fields, ``force``, removal of
fields a manager stops applying, shared ownership of equal values, updates taking fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("kubernetes")

import kubernetes

from support.k8s_apiserver import FakeApiServer
from support.k8s_cluster import TRACES, create_trace, install_crds, trace_manifest

APPLY = "application/apply-patch+yaml"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    install_crds(server)
    create_trace(server, trace_manifest("t", ["openat"]))
    yield server
    server.close()


@pytest.fixture
def client(api: FakeApiServer) -> Iterator[Any]:
    cfg = kubernetes.client.Configuration()
    cfg.host = api.url
    with kubernetes.client.ApiClient(cfg) as c:
        yield kubernetes.client.CustomObjectsApi(c)


def _apply(client: Any, manager: str, status: dict[str, Any], force: bool = False) -> Any:
    body = {
        "apiVersion": "syshub.io/v1alpha1",
        "kind": "Trace",
        "metadata": {"name": "t", "namespace": "default"},
        "status": status,
    }
    return client.patch_namespaced_custom_object_status(
        "syshub.io",
        "v1alpha1",
        "default",
        "traces",
        "t",
        body,
        field_manager=manager,
        force=force,
        _content_type=APPLY,
    )


def _nodes(api: FakeApiServer) -> dict[str, Any]:
    return dict(api.get_object(TRACES, "default", "t")["status"]["nodes"])


def test_each_manager_owns_its_entry(api: FakeApiServer, client: Any) -> None:
    _apply(client, "agent-a", {"nodes": {"a": {"state": "Running", "matched": 1}}})
    _apply(client, "agent-b", {"nodes": {"b": {"state": "Running", "matched": 2}}})
    assert _nodes(api) == {
        "a": {"state": "Running", "matched": 1},
        "b": {"state": "Running", "matched": 2},
    }
    owners = api.owners(TRACES, "default", "t")
    assert owners[("agent-a", "Apply", "status")] == {
        ("status", "nodes", "a", "state"),
        ("status", "nodes", "a", "matched"),
    }
    assert all(p[2] == "b" for p in owners[("agent-b", "Apply", "status")])
    managed = api.get_object(TRACES, "default", "t")["metadata"]["managedFields"]
    fields = {m["manager"]: m["fieldsV1"] for m in managed}
    assert fields["agent-a"] == {"f:status": {"f:nodes": {"f:a": {"f:matched": {}, "f:state": {}}}}}
    assert {m["subresource"] for m in managed} == {"status"}
    assert api.apply_conflicts == 0


def test_conflict_then_force(api: FakeApiServer, client: Any) -> None:
    _apply(client, "agent-a", {"nodes": {"a": {"state": "Running"}}})
    with pytest.raises(kubernetes.client.ApiException) as err:
        _apply(client, "intruder", {"nodes": {"a": {"state": "Failed"}}})
    assert err.value.status == 409
    reason = json.loads(err.value.body)
    assert reason["reason"] == "Conflict"
    assert 'conflict with "agent-a": .status.nodes.a.state' in reason["message"]
    assert _nodes(api)["a"]["state"] == "Running" and api.apply_conflicts == 1
    # the same value is no conflict: both own it
    _apply(client, "intruder", {"nodes": {"a": {"state": "Running"}}})
    owners = api.owners(TRACES, "default", "t")
    assert ("status", "nodes", "a", "state") in owners[("agent-a", "Apply", "status")]
    assert ("status", "nodes", "a", "state") in owners[("intruder", "Apply", "status")]
    # force moves the field
    _apply(client, "intruder", {"nodes": {"a": {"state": "Failed"}}}, force=True)
    owners = api.owners(TRACES, "default", "t")
    assert ("agent-a", "Apply", "status") not in owners
    assert _nodes(api)["a"]["state"] == "Failed"


def test_fields_left_out_are_removed(api: FakeApiServer, client: Any) -> None:
    _apply(client, "agent-a", {"nodes": {"a": {"state": "Running", "lastError": "CRI"}}})
    _apply(client, "agent-a", {"nodes": {"a": {"state": "Running"}}})
    assert _nodes(api) == {"a": {"state": "Running"}}


def test_update_takes_fields_and_apply_then_conflicts(api: FakeApiServer, client: Any) -> None:
    _apply(client, "agent-a", {"nodes": {"a": {"state": "Running"}}})
    client.patch_namespaced_custom_object_status(
        "syshub.io",
        "v1alpha1",
        "default",
        "traces",
        "t",
        {"status": {"nodes": {"a": {"state": "Complete"}}}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )
    owners = api.owners(TRACES, "default", "t")
    assert owners[("kubectl-edit", "Update", "status")] == {("status", "nodes", "a", "state")}
    with pytest.raises(kubernetes.client.ApiException) as err:
        _apply(client, "agent-a", {"nodes": {"a": {"state": "Running"}}})
    assert err.value.status == 409 and "kubectl-edit" in err.value.body


def test_apply_needs_a_field_manager(api: FakeApiServer, client: Any) -> None:
    with pytest.raises(kubernetes.client.ApiException) as err:
        _apply(client, "", {"nodes": {"a": {"state": "Running"}}})
    assert err.value.status == 422
