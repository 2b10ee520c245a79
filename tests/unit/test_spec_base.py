"""The pydantic conventions of the spec models: camelCase manifest names and Python names,
null as absent, unknown keys, immutability, and pydantic's ValidationError never escaping
(it becomes a one-line TraceSpecError naming the manifest path)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from support.spec_env import manifest, resolve
from syshub.errors import SelectorError, TraceSpecError
from syshub.spec import (
    FieldSelector,
    LabelSelector,
    ObjectMeta,
    Trace,
    TraceMetadata,
    TraceSpec,
    TraceState,
    TraceStatus,
)
from syshub.spec.base import spec_error


def test_manifest_and_python_names_build_the_same_spec() -> None:
    camel = TraceSpec.from_manifest(
        {
            "syscalls": ["read"],
            "labelSelector": {"matchLabels": {"app": "a"}},
            "fieldSelector": "status.phase=Running",
            "hostSelector": ["web"],
            "sampleRate": 3,
            "duration": "1m",
        },
        {"resolve": resolve},
    )
    snake = TraceSpec(
        resolve=resolve,
        syscalls=("read",),
        label_selector=LabelSelector.parse("app=a"),
        field_selector=FieldSelector.parse("status.phase=Running"),
        host_selector=["web"],
        sample_rate=3,
        duration=60,
    )
    assert camel == snake
    assert hash(camel) == hash(snake)
    assert snake.model_dump(by_alias=True, mode="json")["labelSelector"] == {
        "matchLabels": {"app": "a"}
    }
    assert snake.to_dict()["duration"] == "1m0s"


def test_trace_metadata_is_object_meta() -> None:
    assert TraceMetadata is ObjectMeta
    meta = ObjectMeta.from_manifest(
        {"name": "t", "resourceVersion": "7", "creationTimestamp": "2020-01-01T00:00:00Z"}
    )
    assert meta.resource_version == "7"
    assert meta.creation_timestamp == datetime(2020, 1, 1, tzinfo=UTC)
    assert ObjectMeta(name="t", resource_version="7") == ObjectMeta.from_manifest(
        {"name": "t", "resourceVersion": "7"}
    )


def test_null_means_absent() -> None:
    doc = manifest(
        labelSelector=None, fieldSelector=None, hostSelector=None, sampleRate=None, duration=None
    )
    doc["status"] = None
    doc["metadata"] = {"name": "t", "namespace": None, "labels": None}
    trace = Trace.from_dict(doc, resolve=resolve)
    assert trace.spec == TraceSpec(syscalls=("openat",), resolve=resolve)
    assert trace.namespace == "default"
    assert trace.status == TraceStatus()


def test_unknown_keys_forbidden_in_spec_and_root_ignored_in_metadata_and_status() -> None:
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(manifest(labels={"a": "b"}), resolve=resolve)
    assert str(info.value) == (
        "spec.labels: unknown field (expected one of syscalls, labelSelector, fieldSelector, "
        "hostSelector, sampleRate, duration)"
    )
    with pytest.raises(TraceSpecError, match=r"^specs: unknown field \(expected one of apiV"):
        Trace.from_dict({**manifest(), "specs": {}}, resolve=resolve)
    doc = manifest()
    doc["metadata"] = {
        "name": "t",
        "managedFields": [{"manager": "kubectl"}],
        "ownerReferences": [],
    }
    doc["status"] = {"state": "Running", "conditions": [{"type": "Ready"}]}
    trace = Trace.from_dict(doc, resolve=resolve)
    assert trace.status.state is TraceState.RUNNING
    assert "managedFields" not in trace.to_dict()["metadata"]


def test_error_paths_use_manifest_names_for_python_input() -> None:
    with pytest.raises(TraceSpecError) as info:
        TraceSpec(resolve=resolve, syscalls=["read"], host_selector=["ok", 3])
    assert info.value.field == "spec.hostSelector[1]"
    with pytest.raises(TraceSpecError) as info:
        TraceStatus(job_id=5)  # type: ignore[arg-type]
    assert info.value.field == "status.jobID"
    with pytest.raises(TraceSpecError) as info:
        ObjectMeta(name="t", resource_version=3)  # type: ignore[arg-type]
    assert info.value.field == "metadata.resourceVersion"
    with pytest.raises(TraceSpecError) as info:
        TraceStatus.from_dict({"job": 1})
    assert info.value.field == "status.job"  # swoll's key, as written


def test_nested_errors_keep_their_selector_class() -> None:
    with pytest.raises(SelectorError) as info:
        TraceSpec(resolve=resolve, syscalls=["read"], fieldSelector={"matchLabels": {"x": "1"}})
    assert info.value.field == "spec.fieldSelector.matchLabels"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TraceSpec(resolve=resolve, syscalls=[]), "spec.syscalls"),
        (lambda: TraceSpec(resolve=resolve), "spec.syscalls"),
        (lambda: ObjectMeta(name="UPPER"), "metadata.name"),
        (lambda: ObjectMeta(name="t", labels={"k": 1}), "metadata.labels.k"),
        (lambda: TraceStatus(state="Done"), "status.state"),
        (lambda: TraceStatus(start_time="later"), "status.startTime"),
        (lambda: Trace.from_dict("apiVersion: x"), "document"),
        (lambda: Trace.from_dict({1: 2}), "document"),
        (lambda: Trace.from_dict({**manifest(), "metadata": {"name": "t", 7: "x"}}), "metadata"),
    ],
)
def test_no_validation_error_escapes(build: Any, field: str) -> None:
    with pytest.raises(TraceSpecError) as info:
        build()
    assert not isinstance(info.value, ValidationError)
    assert info.value.field == field
    assert "\n" not in str(info.value)
    assert "pydantic" not in str(info.value)


def test_values_are_immutable() -> None:
    trace = Trace.new("t", ["read"], resolve=resolve)
    for target, name in (
        (trace, "spec"),
        (trace, "status"),
        (trace.spec, "sample_rate"),
        (trace.metadata, "name"),
        (trace.status, "state"),
    ):
        with pytest.raises(AttributeError):
            setattr(target, name, None)
    with pytest.raises(AttributeError):
        del trace.spec.duration


def test_resolver_reaches_nested_validation_through_the_context() -> None:
    seen: list[str] = []

    def upper(name: str) -> str:
        seen.append(name)
        return name.upper()

    trace = Trace.from_dict(manifest(syscalls=["read", "sys_write"]), resolve=upper)
    assert trace.spec.syscalls == ("READ", "SYS_WRITE")
    assert seen == ["read", "sys_write"]


def test_spec_error_for_an_unknown_location() -> None:
    """A location that leaves the models is still written as a path."""
    try:
        TraceSpec.model_validate({"syscalls": ["read"], "sampleRate": "x"}, context={})
    except ValidationError as exc:
        error = spec_error(exc, "items[3].spec", TraceSpec)
    assert str(error).startswith("items[3].spec.sampleRate: expected an integer, got string")


def test_spec_from_dict_under_a_given_field() -> None:
    spec = TraceSpec.from_dict({"syscalls": ["read"], "sampleRate": 4}, resolve=resolve)
    assert spec.sample_rate == 4
    with pytest.raises(TraceSpecError) as info:
        TraceSpec.from_dict({"syscalls": ["nope"]}, resolve=resolve, field="items[2].spec")
    assert info.value.field == "items[2].spec.syscalls[0]"
