"""The Trace model: loading both API groups, validation paths, durations, status updates."""

from __future__ import annotations

import difflib
import json
import pickle
import re
import sys
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from syshub.errors import SelectorError, TraceSpecError
from syshub.spec.selectors import FieldSelector, LabelSelector, Requirement
from syshub.spec.trace import (
    API_VERSION,
    SWOLL_API_VERSION,
    Trace,
    TraceMetadata,
    TraceSpec,
    TraceState,
    TraceStatus,
    default_resolver,
    format_duration,
    load_traces,
    new_job_id,
    parse_duration,
)

# --------------------------------------------------------------------------- test resolver

_TABLE = Path(__file__).resolve().parents[2] / "bpf-rs" / "data" / "syscalls_x86_64.tsv"
_FALLBACK_NAMES = frozenset(
    {"read", "write", "open", "close", "stat", "fstat", "mmap", "connect", "accept", "sendto"}
    | {"recvfrom", "socket", "bind", "listen", "clone", "fork", "vfork", "execve", "exit"}
    | {"kill", "openat", "mkdirat", "unlinkat", "renameat", "execveat", "accept4", "getppid"}
    | {"getpid", "nanosleep"}
)


def _syscall_names() -> frozenset[str]:
    """Names from the shared syscall table (column 2) when it exists, else a fixed list."""
    if not _TABLE.is_file():
        return _FALLBACK_NAMES
    names = set()
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        names.add(line.split("\t")[1])
    return frozenset(names)


NAMES = _syscall_names()


def resolve(name: str) -> str:
    """Canonical name without ``sys_``, or ValueError with a suggestion."""
    bare = name.removeprefix("sys_")
    if bare in NAMES:
        return bare
    close = difflib.get_close_matches(bare, sorted(NAMES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown syscall {name!r}{hint}")


def test_resolver_table_is_sane() -> None:
    assert {"openat", "execve", "connect", "read"} <= NAMES
    assert resolve("sys_openat") == "openat"
    with pytest.raises(ValueError, match=re.escape("did you mean 'openat'")):
        resolve("opneat")


# --------------------------------------------------------------------------- manifests

SWOLL_MANIFEST = (
    """\
apiVersion: tools.swoll.criticalstack.com/v1alpha1
kind: Trace
metadata: {name: trace-nginx, namespace: swoll}
spec:
  hostSelector: [nginx]
  labelSelector: {matchLabels: {app: nginx}}
  fieldSelector: {matchLabels: {status.phase: Running}}
  syscalls: [sys_openat, sys_execve, connect]
  sampleRate: 2
  duration: 5m
"""
    # one line in the manifest, split here only for the line length
    'status: {state: Running, job: trace-nginx-abc, startTime: "2021-01-02T03:04:05Z", '
    'completeTime: "2021-01-02T03:09:05Z"}\n'
)

OUR_MANIFEST = """\
apiVersion: syshub.io/v1alpha1
kind: Trace
metadata:
  name: web-exec
  namespace: shop
  labels:
    team: payments
spec:
  syscalls: [execve, execveat]
  labelSelector:
    matchLabels: {app: web}
    matchExpressions:
      - {key: tier, operator: In, values: [frontend, edge]}
      - {key: canary, operator: DoesNotExist}
  fieldSelector: status.phase=Running,spec.nodeName!=node-0
  hostSelector: [web, sidecar]
  sampleRate: 0
  duration: 1h30m
"""


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
            "completeTime": "2021-01-02T03:09:05Z",
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


def _manifest(**spec_changes: object) -> dict[str, object]:
    spec: dict[str, object] = {"syscalls": ["openat"]}
    spec.update(spec_changes)
    return {"apiVersion": API_VERSION, "kind": "Trace", "metadata": {"name": "t"}, "spec": spec}


@pytest.mark.parametrize(
    ("manifest", "field", "message"),
    [
        (
            _manifest(syscalls=["read", "execve", "opneat"]),
            "spec.syscalls[2]",
            "spec.syscalls[2]: unknown syscall 'opneat' (did you mean 'openat'?)",
        ),
        (_manifest(syscalls=[]), "spec.syscalls", "spec.syscalls: must list at least one syscall"),
        (_manifest(syscalls=None), "spec.syscalls", "spec.syscalls: required"),
        (_manifest(syscalls="openat"), "spec.syscalls", "spec.syscalls: expected a list"),
        (
            _manifest(syscalls=["read", 5]),
            "spec.syscalls[1]",
            "spec.syscalls[1]: expected a string",
        ),
        (_manifest(syscalls=[""]), "spec.syscalls[0]", "spec.syscalls[0]: syscall name must not"),
        (_manifest(sampleRate=-1), "spec.sampleRate", "spec.sampleRate: must be >= 0"),
        (
            _manifest(sampleRate=1.5),
            "spec.sampleRate",
            "spec.sampleRate: expected an integer, got number 1.5",
        ),
        (_manifest(sampleRate="2"), "spec.sampleRate", "spec.sampleRate: expected an integer"),
        (_manifest(sampleRate=True), "spec.sampleRate", "spec.sampleRate: expected an integer"),
        (_manifest(sampleRate=2**32), "spec.sampleRate", "spec.sampleRate: must be at most"),
        (
            _manifest(labelSelector={"matchExpressions": [{"key": "a", "operator": "Foo"}]}),
            "spec.labelSelector.matchExpressions[0].operator",
            "spec.labelSelector.matchExpressions[0].operator: unknown operator 'Foo'",
        ),
        (
            _manifest(labelSelector="app=demo"),
            "spec.labelSelector",
            "spec.labelSelector: expected a mapping, got string",
        ),
        (
            _manifest(fieldSelector={"matchLabels": {"metadata.uid": "x"}}),
            "spec.fieldSelector.matchLabels",
            "spec.fieldSelector.matchLabels: unknown field 'metadata.uid'",
        ),
        (
            _manifest(fieldSelector="status.phase>1"),
            "spec.fieldSelector",
            "spec.fieldSelector: invalid term",
        ),
        (
            _manifest(hostSelector="nginx"),
            "spec.hostSelector",
            "spec.hostSelector: expected a list of container names, got string 'nginx'",
        ),
        (
            _manifest(hostSelector={"name": "nginx"}),
            "spec.hostSelector",
            "spec.hostSelector: expected a list of container names, got mapping",
        ),
        (_manifest(hostSelector=[1]), "spec.hostSelector[0]", "spec.hostSelector[0]: expected a"),
        (
            _manifest(hostSelector=["a", ""]),
            "spec.hostSelector[1]",
            "spec.hostSelector[1]: container name",
        ),
        (_manifest(duration="-5m"), "spec.duration", "spec.duration: must be positive"),
        (_manifest(duration="0s"), "spec.duration", "spec.duration: must be positive"),
        (_manifest(duration="five minutes"), "spec.duration", "spec.duration: invalid duration"),
        (_manifest(sampleRte=2), "spec.sampleRte", "spec.sampleRte: unknown field"),
        (
            {
                "apiVersion": API_VERSION,
                "kind": "Trace",
                "metadata": {},
                "spec": {"syscalls": ["read"]},
            },
            "metadata.name",
            "metadata.name: required",
        ),
        (
            {"apiVersion": API_VERSION, "kind": "Trace", "spec": {"syscalls": ["read"]}},
            "metadata.name",
            "metadata.name: required",
        ),
        (
            {**_manifest(), "metadata": {"name": "Bad_Name"}},
            "metadata.name",
            "metadata.name: invalid name 'Bad_Name'",
        ),
        (
            {**_manifest(), "metadata": {"name": "t", "namespace": "a.b"}},
            "metadata.namespace",
            "metadata.namespace: invalid namespace 'a.b'",
        ),
        (
            {**_manifest(), "metadata": {"name": "t", "labels": {"app": "a b"}}},
            "metadata.labels.app",
            "metadata.labels.app: invalid label value 'a b'",
        ),
        (
            {**_manifest(), "metadata": {"name": "t", "labels": {"on": True}}},
            "metadata.labels.on",
            "metadata.labels.on: expected a string, got boolean True (quote it in YAML)",
        ),
        (
            {**_manifest(), "apiVersion": "v1"},
            "apiVersion",
            "apiVersion: unsupported apiVersion 'v1' (expected syshub.io/v1alpha1 or "
            "tools.swoll.criticalstack.com/v1alpha1)",
        ),
        ({**_manifest(), "apiVersion": None}, "apiVersion", "apiVersion: required"),
        ({**_manifest(), "kind": "Pod"}, "kind", "kind: expected 'Trace', got 'Pod'"),
        ({**_manifest(), "kind": None}, "kind", "kind: required"),
        ({**_manifest(), "kind": "TraceList"}, "kind", "kind: TraceList holds several traces"),
        ({**_manifest(), "spec": None}, "spec", "spec: required"),
        ({**_manifest(), "spec": ["read"]}, "spec", "spec: expected a mapping, got list"),
        ({**_manifest(), "extra": 1}, "extra", "extra: unknown field"),
    ],
)
def test_validation_errors_name_the_field(
    manifest: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(manifest, resolve=resolve)
    assert info.value.field == field
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_group_is_reported_before_spec_problems() -> None:
    manifest = {**_manifest(syscalls=["nosuchcall"]), "apiVersion": "apps/v1", "kind": "Trace"}
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(manifest, resolve=resolve)
    assert info.value.field == "apiVersion"


def test_selector_errors_stay_selector_errors() -> None:
    with pytest.raises(SelectorError):
        Trace.from_dict(_manifest(labelSelector={"matchLabels": {"-x": "y"}}), resolve=resolve)


def test_not_a_mapping() -> None:
    with pytest.raises(TraceSpecError, match=re.escape("document: expected a mapping, got list")):
        Trace.from_dict(["x"], resolve=resolve)


def test_syscalls_deduplicated_and_prefix_stripped() -> None:
    trace = Trace.from_dict(
        _manifest(syscalls=["sys_read", "read", "write", "sys_write"]), resolve=resolve
    )
    assert trace.spec.syscalls == ("read", "write")


def test_sample_rate_missing_defaults_to_one() -> None:
    trace = Trace.from_dict(_manifest(), resolve=resolve)
    assert trace.spec.sample_rate == 1
    assert trace.spec.duration is None
    assert trace.to_dict()["spec"] == {"syscalls": ["openat"], "sampleRate": 1}
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
    trace = Trace.from_dict({**_manifest(), "metadata": meta}, resolve=resolve)
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
    with pytest.raises(
        TraceSpecError, match=re.escape("spec.labelSelector: expected a LabelSelector")
    ):
        TraceSpec(syscalls=("read",), label_selector={}, resolve=resolve)  # type: ignore[arg-type]
    assert TraceSpec(syscalls=("read",), sample_rate=0, resolve=resolve).sample_rate == 1


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("2h45m", 9900.0),
        ("1.5h", 5400.0),
        ("300us", 0.0003),
        ("300\u00b5s", 0.0003),
        ("300\u03bcs", 0.0003),
        ("250ns", 2.5e-7),
        ("1h0m0.5s", 3600.5),
        (".5s", 0.5),
        ("+10s", 10.0),
        (" 5m ", 300.0),
        (90, 90.0),
        (1.25, 1.25),
        ("90", 90.0),
        ("2.5", 2.5),
        (timedelta(minutes=2, microseconds=5), 120.000005),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5m", "must be positive"),
        ("0s", "must be positive"),
        ("0", "must be positive"),
        (0, "must be positive"),
        (-1, "must be positive"),
        ("0.1ns", "must be positive"),
        ("5", None),
        ("abc", "invalid duration 'abc'"),
        ("5 m", "invalid duration"),
        ("1d", "invalid duration"),
        ("m5", "invalid duration"),
        ("", "invalid duration"),
        (".s", "invalid duration"),
        (float("nan"), "invalid duration"),
        (float("inf"), "invalid duration"),
        (True, "expected a duration, got boolean"),
        ([5], "expected a duration, got list"),
        ("3000000h", "too long"),
    ],
)
def test_parse_duration_errors(value: object, message: str | None) -> None:
    if message is None:  # control: a bare number string is fine
        assert parse_duration(value) == 5.0
        return
    with pytest.raises(TraceSpecError, match=re.escape(message)) as info:
        parse_duration(value)
    assert info.value.field == "spec.duration"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300.0, "5m0s"),
        (3600.0, "1h0m0s"),
        (5400.0, "1h30m0s"),
        (90.0, "1m30s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (0.0003, "300\u00b5s"),
        (2.5e-7, "250ns"),
        (0.0, "0s"),
        (3600.5, "1h0m0.5s"),
        (-90.0, "-1m30s"),
    ],
)
def test_format_duration_matches_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**15))
def test_property_duration_text_round_trip(ns: int) -> None:
    seconds = ns / 1_000_000_000
    assert parse_duration(format_duration(seconds)) == seconds


# --------------------------------------------------------------------------- Trace.new


def test_new_with_all_spellings() -> None:
    a = Trace.new(
        "demo",
        ["sys_openat", "connect"],
        namespace="apps",
        labels="app=demo,tier!=db",
        fields="status.phase=Running",
        hosts=["web"],
        sample_rate=4,
        duration="1m30s",
        resolve=resolve,
    )
    b = Trace.new(
        "demo",
        ("openat", "connect"),
        namespace="apps",
        labels=LabelSelector(
            match_labels={"app": "demo"},
            match_expressions=(Requirement("tier", "NotIn", ("db",)),),
        ),
        fields=FieldSelector((("status.phase", "=", "Running"),)),
        hosts=("web",),
        sample_rate=4,
        duration=timedelta(seconds=90),
        resolve=resolve,
    )
    assert a == b
    assert a.spec.duration == 90.0
    assert a.api_version == API_VERSION
    assert a.status == TraceStatus()
    c = Trace.new("demo", ["read"], labels={"app": "demo"}, duration=90, resolve=resolve)
    assert c.spec.label_selector == LabelSelector.parse("app=demo")
    assert c.spec.duration == 90.0
    assert c.namespace == "default"
    swoll = Trace.new("demo", ["read"], resolve=resolve, api_version=SWOLL_API_VERSION)
    assert swoll.to_dict()["apiVersion"] == SWOLL_API_VERSION


def test_new_validates() -> None:
    with pytest.raises(SelectorError) as info:
        Trace.new("demo", ["read"], labels="app in ()", resolve=resolve)
    assert info.value.field == "spec.labelSelector"
    with pytest.raises(SelectorError) as info:
        Trace.new("demo", ["read"], fields="nope=1", resolve=resolve)
    assert info.value.field == "spec.fieldSelector"
    with pytest.raises(TraceSpecError, match=re.escape("spec.syscalls: expected a list")):
        Trace.new("demo", "read", resolve=resolve)
    with pytest.raises(TraceSpecError, match=re.escape("spec.hostSelector: expected a list")):
        Trace.new("demo", ["read"], hosts="web", resolve=resolve)
    with pytest.raises(TraceSpecError, match=re.escape("spec.syscalls[0]: unknown syscall")):
        Trace.new("demo", ["nosuchcall"], resolve=resolve)
    with pytest.raises(TraceSpecError, match=re.escape("metadata.name")):
        Trace.new("", ["read"], resolve=resolve)


def test_constructor_checks_api_version_and_kind() -> None:
    meta = TraceMetadata(name="t")
    spec = TraceSpec(syscalls=("read",), resolve=resolve)
    assert Trace(SWOLL_API_VERSION, "Trace", meta, spec).status == TraceStatus()
    with pytest.raises(TraceSpecError, match=re.escape("apiVersion")):
        Trace("syshub.io/v1", "Trace", meta, spec)
    with pytest.raises(TraceSpecError, match=re.escape("kind")):
        Trace(API_VERSION, "Job", meta, spec)


# --------------------------------------------------------------------------- status updates


def test_status_lifecycle_and_deadline() -> None:
    trace = Trace.new("demo", ["read"], duration="10m", resolve=resolve)
    assert trace.deadline() is None
    assert not trace.expired()
    start = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    running = trace.mark_running("demo-12345678", at=start)
    assert running is trace.status
    assert running.state is TraceState.RUNNING
    assert running.job_id == "demo-12345678"
    assert running.completion_time is None
    assert trace.deadline() == start + timedelta(minutes=10)
    assert not trace.expired(start + timedelta(minutes=9, seconds=59))
    assert trace.expired(start + timedelta(minutes=10))
    done = trace.mark_complete(at=start + timedelta(minutes=10))
    assert done.state is TraceState.COMPLETE
    assert done.state.finished
    assert done.start_time == start  # untouched
    assert done.job_id == "demo-12345678"
    failed = trace.mark_failed()
    assert failed.state is TraceState.FAILED
    assert failed.completion_time is not None
    assert failed.completion_time.tzinfo is UTC
    restarted = trace.mark_running("demo-87654321", at=start)
    assert restarted.completion_time is None


def test_update_status_changes_only_given_fields() -> None:
    trace = Trace.new("demo", ["read"], resolve=resolve)
    trace.update_status(job_id="j1")
    assert trace.status == TraceStatus(job_id="j1")
    naive = datetime(2024, 1, 1, 0, 0)
    trace.update_status(start_time=naive, state=TraceState.RUNNING)
    assert trace.status.start_time == datetime(2024, 1, 1, tzinfo=UTC)  # naive taken as UTC
    assert trace.status.job_id == "j1"
    cleared = trace.update_status(start_time=None)
    assert cleared.start_time is None
    assert cleared.state is TraceState.RUNNING
    assert cleared is trace.status
    trace.set_status(TraceStatus())
    assert trace.status == TraceStatus()
    with pytest.raises(TypeError):
        trace.set_status("Running")  # type: ignore[arg-type]


def test_status_snapshots_are_immutable() -> None:
    trace = Trace.new("demo", ["read"], resolve=resolve)
    snap = trace.status
    trace.mark_running("demo-1")
    assert snap.state is TraceState.PENDING  # an old snapshot never changes
    with pytest.raises(AttributeError):
        trace.status.job_id = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        trace.spec = trace.spec  # type: ignore[misc]


def test_concurrent_status_updates_are_consistent() -> None:
    """Writers publish (job_id, start_time) pairs that belong together; readers must never see a
    job id with another writer's start time."""
    trace = Trace.new("demo", ["read"], resolve=resolve)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    stop = threading.Event()
    bad: list[TraceStatus] = []
    seen = [0]

    def writer(k: int) -> None:
        for i in range(2000):
            n = k * 10_000 + i
            trace.mark_running(f"job-{n}", at=base + timedelta(seconds=n))

    def reader() -> None:
        while not stop.is_set():
            status = trace.status
            if status.job_id:
                seen[0] += 1
                n = int(status.job_id.removeprefix("job-"))
                if status.start_time != base + timedelta(seconds=n):
                    bad.append(status)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert bad == []
    assert seen[0] > 0
    final = int(trace.status.job_id.removeprefix("job-"))
    assert final % 10_000 == 1999  # the last write of some writer


def test_equality_hash_and_pickle() -> None:
    a = Trace.from_yaml(OUR_MANIFEST, resolve=resolve)
    b = Trace.from_yaml(OUR_MANIFEST, resolve=resolve)
    assert a == b
    index = {a: "job"}
    b.mark_running("x")
    assert a != b  # status takes part in equality
    assert hash(a) == hash(b)  # but not in the hash: keys stay valid while status changes
    a.mark_running("x", at=b.status.start_time)
    assert index[b] == "job"
    assert pickle.loads(pickle.dumps(a)) == a
    assert "web-exec" in repr(a)
    assert a != "web-exec"


# --------------------------------------------------------------------------- loading many


def test_load_multi_document_yaml() -> None:
    text = OUR_MANIFEST + "---\n" + SWOLL_MANIFEST + "---\n"
    traces = load_traces(text, resolve=resolve)
    assert [t.name for t in traces] == ["web-exec", "trace-nginx"]
    assert [t.api_version for t in traces] == [API_VERSION, SWOLL_API_VERSION]


def test_load_trace_list_and_plain_list() -> None:
    items = [yaml.safe_load(OUR_MANIFEST), yaml.safe_load(SWOLL_MANIFEST)]
    trace_list = {"apiVersion": SWOLL_API_VERSION, "kind": "TraceList", "items": items}
    kubectl_list = {"apiVersion": "v1", "kind": "List", "items": items}
    for doc in (trace_list, kubectl_list):
        traces = load_traces(yaml.safe_dump(doc), resolve=resolve)
        assert [t.name for t in traces] == ["web-exec", "trace-nginx"]
        assert load_traces(json.dumps(doc), resolve=resolve) == traces
    assert load_traces(json.dumps(items), resolve=resolve)[1].name == "trace-nginx"
    empty = {"apiVersion": API_VERSION, "kind": "TraceList", "items": []}
    assert load_traces(json.dumps(empty), resolve=resolve) == []


def test_load_errors_carry_document_and_item_positions() -> None:
    broken = OUR_MANIFEST.replace("execveat", "execvat")
    with pytest.raises(TraceSpecError) as info:
        load_traces(SWOLL_MANIFEST + "---\n" + broken, resolve=resolve)
    assert info.value.field == "documents[1].spec.syscalls[1]"
    assert "did you mean 'execveat'" in str(info.value)
    items = [yaml.safe_load(SWOLL_MANIFEST), yaml.safe_load(broken)]
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    with pytest.raises(TraceSpecError) as info:
        load_traces(json.dumps(doc), resolve=resolve)
    assert info.value.field == "items[1].spec.syscalls[1]"
    bad_list = {"apiVersion": "example.com/v1", "kind": "TraceList", "items": []}
    with pytest.raises(TraceSpecError, match=re.escape("unsupported apiVersion 'example.com/v1'")):
        load_traces(json.dumps(bad_list), resolve=resolve)
    with pytest.raises(SelectorError) as sel_info:
        load_traces(
            json.dumps({**doc, "items": [_manifest(labelSelector={"matchLabels": {"a": "b c"}})]}),
            resolve=resolve,
        )
    assert sel_info.value.field == "items[0].spec.labelSelector.matchLabels.a"


def test_load_from_paths(tmp_path: Path) -> None:
    path = tmp_path / "traces.yaml"
    path.write_text(OUR_MANIFEST + "---\n" + SWOLL_MANIFEST, encoding="utf-8")
    by_path = load_traces(path, resolve=resolve)
    by_str = load_traces(str(path), resolve=resolve)
    assert [t.name for t in by_path] == ["web-exec", "trace-nginx"]
    assert by_str == by_path
    with pytest.raises(FileNotFoundError):
        load_traces(str(tmp_path / "missing.yaml"), resolve=resolve)


def test_from_yaml_wants_exactly_one() -> None:
    with pytest.raises(TraceSpecError, match=re.escape("expected exactly one Trace, found 2")):
        Trace.from_yaml(OUR_MANIFEST + "---\n" + SWOLL_MANIFEST, resolve=resolve)
    with pytest.raises(TraceSpecError, match=re.escape("expected exactly one Trace, found 0")):
        Trace.from_yaml("---\n", resolve=resolve)
    with pytest.raises(TraceSpecError, match=re.escape("invalid YAML")) as info:
        Trace.from_yaml("spec: [unclosed", resolve=resolve)
    assert info.value.field == "document"
    with pytest.raises(TraceSpecError, match=re.escape("invalid JSON")):
        Trace.from_json("{", resolve=resolve)


def test_yaml_implicit_types_are_reported() -> None:
    text = OUR_MANIFEST.replace("matchLabels: {app: web}", "matchLabels: {app: web, debug: yes}")
    with pytest.raises(SelectorError) as info:
        Trace.from_yaml(text, resolve=resolve)
    assert info.value.field == "spec.labelSelector.matchLabels.debug"
    assert "quote it in YAML" in str(info.value)


# --------------------------------------------------------------------------- job ids


def test_new_job_id() -> None:
    trace = Trace.new("trace-nginx", ["read"], resolve=resolve)
    ids = {new_job_id(trace) for _ in range(200)}
    assert len(ids) == 200
    for job_id in ids:
        assert re.fullmatch(r"trace-nginx-[0-9a-f]{8}", job_id)
    long = Trace.new("a" * 53 + "." + "b" * 100, ["read"], resolve=resolve)
    job_id = new_job_id(long)
    assert len(job_id) <= 63
    assert re.fullmatch(r"a{53}-[0-9a-f]{8}", job_id)
