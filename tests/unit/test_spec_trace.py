"""The Trace resource: Trace.new, status updates under concurrency, value behaviour, loading
many traces from text and files, job ids."""

from __future__ import annotations

import json
import pickle
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from support.spec_env import OUR_MANIFEST, SWOLL_MANIFEST, manifest, resolve
from syshub.errors import SelectorError, TraceSpecError
from syshub.spec import (
    API_VERSION,
    SWOLL_API_VERSION,
    FieldSelector,
    LabelSelector,
    Requirement,
    Trace,
    TraceMetadata,
    TraceSpec,
    TraceState,
    TraceStatus,
    load_traces,
    new_job_id,
)

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
        Trace.new("Bad_Name", ["read"], resolve=resolve)
    assert Trace.new("", ["read"], resolve=resolve).name.startswith("trace-")  # generated


def test_constructor_checks_api_version_and_kind() -> None:
    meta = TraceMetadata(name="t")
    spec = TraceSpec(syscalls=("read",), resolve=resolve)
    trace = Trace(api_version=SWOLL_API_VERSION, kind="Trace", metadata=meta, spec=spec)
    assert trace.status == TraceStatus()
    with pytest.raises(TraceSpecError, match=re.escape("apiVersion: unsupported")):
        Trace(api_version="syshub.io/v1", kind="Trace", metadata=meta, spec=spec)
    with pytest.raises(TraceSpecError, match=re.escape("kind: expected 'Trace', got 'Job'")):
        Trace(api_version=API_VERSION, kind="Job", metadata=meta, spec=spec)


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
            json.dumps({**doc, "items": [manifest(labelSelector={"matchLabels": {"a": "b c"}})]}),
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
