"""The Trace manifest model: both API groups load, round trips, and every validation error
names its field path."""

from __future__ import annotations

import json
import re
import sys
import types
from datetime import UTC, datetime

import pytest
import yaml

from support.spec_env import OUR_MANIFEST, SWOLL_MANIFEST, manifest, resolve
from syshub.errors import SelectorError, TraceSpecError
from syshub.spec import (
    API_VERSION,
    SWOLL_API_VERSION,
    FieldSelector,
    LabelSelector,
    Trace,
    TraceMetadata,
    TraceSpec,
    TraceState,
    TraceStatus,
    default_resolver,
)


def test_swoll_manifest_loads_unchanged() -> None:
    trace = Trace.from_yaml(SWOLL_MANIFEST, resolve=resolve)
    assert trace.api_version == SWOLL_API_VERSION
    assert trace.kind == "Trace"
    assert trace.metadata.name == "trace-nginx"
    assert trace.namespace == "swoll"
    assert trace.key == ("swoll", "trace-nginx")
    spec = trace.spec
    assert spec.syscalls == ("openat", "execve", "connect")
    assert spec.host_selector == ("nginx",)
    assert spec.label_selector == LabelSelector(match_labels={"app": "nginx"})
    assert spec.field_selector == FieldSelector((("status.phase", "=", "Running"),))
    assert spec.sample_rate == 2
    assert spec.duration == 300.0
    status = trace.status
    assert status.state is TraceState.RUNNING
    assert status.job_id == "trace-nginx-abc"
    assert status.start_time == datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert status.completion_time == datetime(2021, 1, 2, 3, 9, 5, tzinfo=UTC)


def test_swoll_manifest_writes_back_in_swoll_shape() -> None:
    trace = Trace.from_yaml(SWOLL_MANIFEST, resolve=resolve)
    data = trace.to_dict()
    assert data == {
        "apiVersion": SWOLL_API_VERSION,
        "kind": "Trace",
        "metadata": {"name": "trace-nginx", "namespace": "swoll"},
        "spec": {
            "syscalls": ["openat", "execve", "connect"],
            "labelSelector": {"matchLabels": {"app": "nginx"}},
            "fieldSelector": {"matchLabels": {"status.phase": "Running"}},
            "hostSelector": ["nginx"],
            "sampleRate": 2,
            "duration": "5m0s",
        },
        "status": {
            "state": "Running",
            "job": "trace-nginx-abc",
            "startTime": "2021-01-02T03:04:05Z",
            "completionTime": "2021-01-02T03:09:05Z",
        },
    }
    assert Trace.from_dict(data, resolve=resolve) == trace


def test_our_manifest_loads() -> None:
    trace = Trace.from_yaml(OUR_MANIFEST, resolve=resolve)
    assert trace.api_version == API_VERSION
    assert trace.metadata == TraceMetadata(
        name="web-exec", namespace="shop", labels={"team": "payments"}
    )
    spec = trace.spec
    assert spec.syscalls == ("execve", "execveat")
    assert spec.label_selector == LabelSelector.parse("app=web,tier in (edge,frontend),!canary")
    assert spec.field_selector == FieldSelector.parse("spec.nodeName!=node-0,status.phase=Running")
    assert spec.host_selector == ("web", "sidecar")
    assert spec.sample_rate == 1  # 0 means "deliver every event"
    assert spec.duration == 5400.0
    assert trace.status == TraceStatus()
    assert trace.status.state is TraceState.PENDING
    assert "status" not in trace.to_dict()


def test_our_status_keys() -> None:
    trace = Trace.from_yaml(OUR_MANIFEST, resolve=resolve)
    trace.mark_running("web-exec-0a1b2c3d", at=datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC))
    trace.mark_complete(at=datetime(2024, 5, 6, 8, 38, 9, tzinfo=UTC))
    status = trace.to_dict()["status"]
    assert status == {
        "state": "Complete",
        "jobID": "web-exec-0a1b2c3d",
        "startTime": "2024-05-06T07:08:09.25Z",
        "completionTime": "2024-05-06T08:38:09Z",
    }
    again = Trace.from_dict(trace.to_dict(), resolve=resolve)
    assert again == trace
    assert again.status.start_time == datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)


@pytest.mark.parametrize("manifest", [SWOLL_MANIFEST, OUR_MANIFEST])
def test_yaml_and_json_round_trip(manifest: str) -> None:
    trace = Trace.from_yaml(manifest, resolve=resolve)
    assert Trace.from_yaml(trace.to_yaml(), resolve=resolve) == trace
    assert Trace.from_json(trace.to_json(), resolve=resolve) == trace
    assert Trace.from_yaml(trace.to_json(indent=2), resolve=resolve) == trace
    assert json.loads(trace.to_json()) == trace.to_dict()
    assert yaml.safe_load(trace.to_yaml()) == trace.to_dict()


def test_status_reads_both_spellings_ours_win() -> None:
    status = TraceStatus.from_dict(
        {
            "jobID": "ours",
            "job": "theirs",
            "state": "Complete",
            "completionTime": "2022-01-01T00:00:00Z",
            "completeTime": "2000-01-01T00:00:00Z",
            "conditions": [],  # unknown status keys are ignored
        }
    )
    assert status.job_id == "ours"
    assert status.completion_time == datetime(2022, 1, 1, tzinfo=UTC)
    assert status.state is TraceState.COMPLETE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", TraceState.PENDING),
        (None, TraceState.PENDING),
        ("Pending", TraceState.PENDING),
        ("Running", TraceState.RUNNING),
        ("Complete", TraceState.COMPLETE),
        ("Failed", TraceState.FAILED),
    ],
)
def test_trace_state_parse(value: object, expected: TraceState) -> None:
    assert TraceState.parse(value) is expected
    assert expected.finished is (expected in (TraceState.COMPLETE, TraceState.FAILED))


def test_trace_state_rejects_unknown() -> None:
    with pytest.raises(TraceSpecError, match=re.escape("unknown state 'Done'")) as info:
        Trace.from_dict(
            {**yaml.safe_load(OUR_MANIFEST), "status": {"state": "Done"}}, resolve=resolve
        )
    assert info.value.field == "status.state"


def test_timestamps_variants() -> None:
    base = yaml.safe_load(OUR_MANIFEST)
    # an unquoted YAML timestamp arrives as a datetime; Go may write nanoseconds and offsets
    trace = Trace.from_yaml(
        OUR_MANIFEST + "status:\n  startTime: 2021-01-02T03:04:05Z\n", resolve=resolve
    )
    assert trace.status.start_time == datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)
    nano = Trace.from_dict(
        {**base, "status": {"startTime": "2021-01-02T05:04:05.123456789+02:00"}}, resolve=resolve
    )
    assert nano.status.start_time == datetime(2021, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    with pytest.raises(TraceSpecError, match=re.escape("invalid RFC 3339 timestamp")) as info:
        Trace.from_dict({**base, "status": {"completeTime": "yesterday"}}, resolve=resolve)
    assert info.value.field == "status.completeTime"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        (
            manifest(syscalls=["read", "execve", "opneat"]),
            "spec.syscalls[2]",
            "spec.syscalls[2]: unknown syscall 'opneat' (did you mean 'openat'?)",
        ),
        (manifest(syscalls=[]), "spec.syscalls", "spec.syscalls: must list at least one syscall"),
        (manifest(syscalls=None), "spec.syscalls", "spec.syscalls: required"),
        (manifest(syscalls="openat"), "spec.syscalls", "spec.syscalls: expected a list"),
        (
            manifest(syscalls=["read", 5]),
            "spec.syscalls[1]",
            "spec.syscalls[1]: expected a string",
        ),
        (manifest(syscalls=[""]), "spec.syscalls[0]", "spec.syscalls[0]: syscall name must not"),
        (
            manifest(sampleRate=-1),
            "spec.sampleRate",
            "spec.sampleRate: must be 0..4294967295 (0 and 1 deliver every event), got -1",
        ),
        (
            manifest(sampleRate=1.5),
            "spec.sampleRate",
            "spec.sampleRate: expected an integer, got number 1.5",
        ),
        (manifest(sampleRate="2"), "spec.sampleRate", "spec.sampleRate: expected an integer"),
        (manifest(sampleRate=True), "spec.sampleRate", "spec.sampleRate: expected an integer"),
        (manifest(sampleRate=2**32), "spec.sampleRate", "spec.sampleRate: must be 0..4294967295"),
        (
            manifest(labelSelector={"matchExpressions": [{"key": "a", "operator": "Foo"}]}),
            "spec.labelSelector.matchExpressions[0].operator",
            "spec.labelSelector.matchExpressions[0].operator: unknown operator 'Foo'",
        ),
        (
            manifest(labelSelector="app=demo"),
            "spec.labelSelector",
            "spec.labelSelector: expected a mapping, got string",
        ),
        (
            manifest(fieldSelector={"matchLabels": {"metadata.uid": "x"}}),
            "spec.fieldSelector.matchLabels",
            "spec.fieldSelector.matchLabels: unknown field 'metadata.uid'",
        ),
        (
            manifest(fieldSelector="status.phase>1"),
            "spec.fieldSelector",
            "spec.fieldSelector: invalid term",
        ),
        (
            manifest(hostSelector="nginx"),
            "spec.hostSelector",
            "spec.hostSelector: expected a list of container names, got string 'nginx'",
        ),
        (
            manifest(hostSelector={"name": "nginx"}),
            "spec.hostSelector",
            "spec.hostSelector: expected a list of container names, got mapping",
        ),
        (manifest(hostSelector=[1]), "spec.hostSelector[0]", "spec.hostSelector[0]: expected a"),
        (
            manifest(hostSelector=["a", ""]),
            "spec.hostSelector[1]",
            "spec.hostSelector[1]: container name",
        ),
        (manifest(duration="-5m"), "spec.duration", "spec.duration: must be positive"),
        (manifest(duration="five minutes"), "spec.duration", "spec.duration: invalid duration"),
        (manifest(sampleRte=2), "spec.sampleRte", "spec.sampleRte: unknown field"),
        (
            {
                "apiVersion": API_VERSION,
                "kind": "Trace",
                "metadata": {"generateName": "Bad_"},
                "spec": {"syscalls": ["read"]},
            },
            "metadata.generateName",
            "metadata.generateName: invalid prefix 'Bad_'",
        ),
        (
            {**manifest(), "metadata": {"generateName": ["x-"]}},
            "metadata.generateName",
            "metadata.generateName: expected a string, got list",
        ),
        (
            {**manifest(), "metadata": {"name": "Bad_Name"}},
            "metadata.name",
            "metadata.name: invalid name 'Bad_Name'",
        ),
        (
            {**manifest(), "metadata": {"name": "t", "namespace": "a.b"}},
            "metadata.namespace",
            "metadata.namespace: invalid namespace 'a.b'",
        ),
        (
            {**manifest(), "metadata": {"name": "t", "labels": {"app": "a b"}}},
            "metadata.labels.app",
            "metadata.labels.app: invalid label value 'a b'",
        ),
        (
            {**manifest(), "metadata": {"name": "t", "labels": {"on": True}}},
            "metadata.labels.on",
            "metadata.labels.on: expected a string, got boolean True (quote it in YAML)",
        ),
        (
            {**manifest(), "apiVersion": "v1"},
            "apiVersion",
            "apiVersion: unsupported apiVersion 'v1' (expected syshub.io/v1alpha1 or "
            "tools.swoll.criticalstack.com/v1alpha1)",
        ),
        ({**manifest(), "apiVersion": None}, "apiVersion", "apiVersion: required"),
        ({**manifest(), "kind": "Pod"}, "kind", "kind: expected 'Trace', got 'Pod'"),
        ({**manifest(), "kind": None}, "kind", "kind: required"),
        ({**manifest(), "kind": "TraceList"}, "kind", "kind: TraceList holds several traces"),
        ({**manifest(), "spec": None}, "spec", "spec: required"),
        ({**manifest(), "spec": ["read"]}, "spec", "spec: expected a mapping, got list"),
        ({**manifest(), "extra": 1}, "extra", "extra: unknown field"),
    ],
)
def test_validation_errors_name_the_field(doc: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(doc, resolve=resolve)
    assert info.value.field == field
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_group_is_reported_before_spec_problems() -> None:
    doc = {**manifest(syscalls=["nosuchcall"]), "apiVersion": "apps/v1", "kind": "Trace"}
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(doc, resolve=resolve)
    assert info.value.field == "apiVersion"


def test_selector_errors_stay_selector_errors() -> None:
    with pytest.raises(SelectorError):
        Trace.from_dict(manifest(labelSelector={"matchLabels": {"-x": "y"}}), resolve=resolve)


def test_not_a_mapping() -> None:
    with pytest.raises(TraceSpecError, match=re.escape("document: expected a mapping, got list")):
        Trace.from_dict(["x"], resolve=resolve)


def test_syscalls_deduplicated_and_prefix_stripped() -> None:
    trace = Trace.from_dict(
        manifest(syscalls=["sys_read", "read", "write", "sys_write"]), resolve=resolve
    )
    assert trace.spec.syscalls == ("read", "write")


def test_sample_rate_missing_defaults_to_one() -> None:
    trace = Trace.from_dict(manifest(), resolve=resolve)
    assert trace.spec.sample_rate == 1
    assert trace.spec.duration is None
    assert trace.to_dict()["spec"] == {"syscalls": ["openat"]}  # written only when set
    assert trace.metadata.namespace == "default"


def test_metadata_round_trip_keeps_server_fields() -> None:
    meta = {
        "name": "t",
        "namespace": "ns",
        "labels": {"app": "x"},
        "annotations": {"example.com/note": "free text, any characters: ok"},
        "uid": "2f0e6f3e-1111-2222-3333-444455556666",
        "resourceVersion": "12345",
        "generation": 3,
        "creationTimestamp": "2023-03-04T05:06:07Z",
        "finalizers": ["syshub.io/cleanup"],
        "managedFields": [{"manager": "kubectl"}],  # dropped
    }
    trace = Trace.from_dict({**manifest(), "metadata": meta}, resolve=resolve)
    out = trace.to_dict()["metadata"]
    assert out == {k: v for k, v in meta.items() if k != "managedFields"}
    assert trace.metadata.creation_timestamp == datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_resolver_error_is_reported_with_index() -> None:
    def picky(name: str) -> str:
        if name == "kill":
            raise ValueError("syscall 'kill' is not traceable here")
        return name

    with pytest.raises(TraceSpecError) as info:
        TraceSpec(syscalls=("read", "kill"), resolve=picky)
    assert str(info.value) == "spec.syscalls[1]: syscall 'kill' is not traceable here"


def test_default_resolver_is_imported_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def canonical_name(name: str) -> str:
        calls.append(name)
        return name.removeprefix("sys_")

    fake = types.ModuleType("syshub.syscalls")
    fake.canonical_name = canonical_name  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "syshub.syscalls", fake)
    spec = TraceSpec(syscalls=("sys_openat", "read"))
    assert spec.syscalls == ("openat", "read")
    assert calls == ["sys_openat", "read"]
    assert default_resolver("sys_write") == "write"


def test_spec_is_frozen_and_hashable() -> None:
    spec = TraceSpec(syscalls=("read",), resolve=resolve)
    with pytest.raises(AttributeError):
        spec.sample_rate = 5  # type: ignore[misc]
    assert spec == TraceSpec(syscalls=("sys_read",), resolve=resolve)
    assert len({spec, TraceSpec(syscalls=("read",), resolve=resolve)}) == 1


def test_spec_constructor_validates() -> None:
    with pytest.raises(TraceSpecError, match=re.escape("spec.syscalls: expected a list")):
        TraceSpec(syscalls="read", resolve=resolve)  # type: ignore[arg-type]
    with pytest.raises(TraceSpecError, match=re.escape("spec.hostSelector: expected a list")):
        TraceSpec(syscalls=("read",), host_selector="web", resolve=resolve)  # type: ignore[arg-type]
    with pytest.raises(TraceSpecError, match=re.escape("spec.duration: must be positive")):
        TraceSpec(syscalls=("read",), duration=-1.0, resolve=resolve)
    with pytest.raises(SelectorError) as info:
        TraceSpec(syscalls=("read",), label_selector={"matchLabels": {"a": "b c"}})
    assert info.value.field == "spec.labelSelector.matchLabels.a"
    # the constructor reads the manifest shapes too (Python or manifest names)
    built = TraceSpec(syscalls=["read"], labelSelector={"matchLabels": {"a": "b"}}, resolve=resolve)
    assert built.label_selector == LabelSelector.parse("a=b")
    assert TraceSpec(syscalls=("read",), sample_rate=0, resolve=resolve).sample_rate == 1
