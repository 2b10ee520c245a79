"""What swoll writes loads as swoll meant it: no ``metadata.name`` (generateName semantics),
``metadata.namespace: ""`` (every namespace), ``duration: "0s"`` (no limit); and what we
write for swoll's API group uses its JSON field names (``job``, ``completionTime``), with
``sampleRate`` only when set."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import yaml

from support.spec_env import resolve
from syshub.errors import TraceSpecError
from syshub.spec import (
    ALL_NAMESPACES,
    API_VERSION,
    DEFAULT_GENERATE_NAME,
    SWOLL_API_VERSION,
    ObjectMeta,
    Trace,
    TraceStatus,
    generate_name,
)

#: The Kubernetes generated-name suffix: 5 characters of k8s.io/apimachinery's alphabet.
SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"

#: A Trace as swoll's REST API (/trace, POST) and its examples build it: a Go
#: ``v1alpha1.Trace`` marshalled with every zero value, no name, all namespaces.
SWOLL_REST_TRACE = {
    "kind": "Trace",
    "apiVersion": "tools.swoll.criticalstack.com/v1alpha1",
    "metadata": {"namespace": "", "creationTimestamp": None},
    "spec": {
        "labelSelector": {},
        "fieldSelector": {},
        "syscalls": ["sys_execve", "sys_openat"],
        "duration": "0s",
    },
    "status": {"startTime": None},
}


def swoll(**metadata: object) -> dict[str, object]:
    return {
        "apiVersion": SWOLL_API_VERSION,
        "kind": "Trace",
        "metadata": metadata,
        "spec": {"syscalls": ["openat"]},
    }


def test_the_rest_api_trace_loads() -> None:
    trace = Trace.from_dict(SWOLL_REST_TRACE, resolve=resolve)
    assert re.fullmatch(f"trace-{SUFFIX}", trace.name)
    assert trace.namespace == ALL_NAMESPACES == "" and trace.all_namespaces
    assert trace.spec.syscalls == ("execve", "openat")
    assert trace.spec.duration is None and trace.deadline() is None
    out = trace.to_dict()
    assert out["metadata"] == {"name": trace.name, "namespace": ""}
    assert out["spec"] == {"syscalls": ["execve", "openat"]}  # no duration, no sampleRate
    assert Trace.from_dict(out, resolve=resolve) == trace  # the generated name is kept


def test_generate_name_semantics() -> None:
    names = {Trace.from_dict(swoll(), resolve=resolve).name for _ in range(20)}
    assert len(names) > 1, "names are random"
    assert all(re.fullmatch(f"{DEFAULT_GENERATE_NAME}{SUFFIX}", n) for n in names)
    trace = Trace.from_dict(swoll(generateName="nginx-"), resolve=resolve)
    assert re.fullmatch(f"nginx-{SUFFIX}", trace.name)
    assert trace.metadata.generate_name == "nginx-"
    assert trace.to_dict()["metadata"]["generateName"] == "nginx-"
    # The API server cuts a long prefix so the name stays <= 63 characters.
    long = Trace.from_dict(swoll(generateName="a" * 80), resolve=resolve).name
    assert len(long) == 63 and long.startswith("a" * 58)
    # A given name wins over generateName.
    assert Trace.from_dict(swoll(name="t", generateName="x-"), resolve=resolve).name == "t"
    # No metadata at all, YAML without a name, and code.
    bare = {k: v for k, v in swoll().items() if k != "metadata"}
    assert re.fullmatch(f"trace-{SUFFIX}", Trace.from_dict(bare, resolve=resolve).name)
    text = yaml.safe_dump(swoll(generateName="y-", namespace="ns"))
    assert re.fullmatch(f"y-{SUFFIX}", Trace.from_yaml(text, resolve=resolve).name)
    assert re.fullmatch(f"trace-{SUFFIX}", Trace.new("", ["openat"], resolve=resolve).name)
    assert re.fullmatch(f"z-{SUFFIX}", ObjectMeta(generate_name="z-").name)
    assert re.fullmatch(f"p{SUFFIX}", generate_name("p"))


def test_a_bad_generate_name_is_one_line() -> None:
    with pytest.raises(TraceSpecError) as info:
        Trace.from_dict(swoll(generateName="Upper-"), resolve=resolve)
    assert info.value.field == "metadata.generateName"
    assert "invalid prefix 'Upper-'" in str(info.value) and "\n" not in str(info.value)


def test_empty_namespace_means_every_namespace() -> None:
    every = Trace.from_dict(swoll(name="t", namespace=""), resolve=resolve)
    assert every.all_namespaces and every.key == ("", "t")
    assert every.to_dict()["metadata"]["namespace"] == ""
    missing = Trace.from_dict(swoll(name="t"), resolve=resolve)
    assert missing.namespace == "default" and not missing.all_namespaces
    assert Trace.new("t", ["openat"], namespace="", resolve=resolve).all_namespaces


@pytest.mark.parametrize("zero", ["0s", "0", 0, "0h0m0s", "0ms", 0.0])
def test_zero_duration_means_no_limit(zero: object) -> None:
    doc = swoll(name="t")
    doc["spec"] = {"syscalls": ["openat"], "duration": zero}
    trace = Trace.from_dict(doc, resolve=resolve)
    assert trace.spec.duration is None
    trace.mark_running("j")
    assert trace.deadline() is None and not trace.expired()
    assert "duration" not in trace.to_dict()["spec"]


def test_other_durations_unchanged() -> None:
    doc = swoll(name="t")
    doc["spec"] = {"syscalls": ["openat"], "duration": "1m30s"}
    assert Trace.from_dict(doc, resolve=resolve).to_dict()["spec"]["duration"] == "1m30s"
    doc["spec"] = {"syscalls": ["openat"], "duration": "-1s"}
    with pytest.raises(TraceSpecError, match=r"spec\.duration: must be positive"):
        Trace.from_dict(doc, resolve=resolve)


def test_swoll_status_uses_swolls_json_names() -> None:
    trace = Trace.from_dict(swoll(name="t", namespace="swoll"), resolve=resolve)
    start = datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)
    trace.mark_running("t-0a1b2c3d", at=start)
    trace.mark_complete(at=datetime(2021, 1, 2, 3, 9, 5, tzinfo=UTC))
    assert trace.to_dict()["status"] == {
        "state": "Complete",
        "job": "t-0a1b2c3d",
        "startTime": "2021-01-02T03:04:05Z",
        "completionTime": "2021-01-02T03:09:05Z",
    }
    # swoll's YAML spelling is still read.
    old = TraceStatus.from_dict({"job": "j", "completeTime": "2021-01-02T03:09:05Z"})
    assert old.completion_time == datetime(2021, 1, 2, 3, 9, 5, tzinfo=UTC)
    # Our group keeps its own keys.
    ours = Trace.new("t", ["openat"], resolve=resolve)
    ours.mark_running("j", at=start)
    assert set(ours.to_dict()["status"]) == {"state", "jobID", "startTime"}
    assert ours.api_version == API_VERSION


def test_sample_rate_written_only_when_set() -> None:
    assert "sampleRate" not in Trace.from_dict(swoll(name="t"), resolve=resolve).to_dict()["spec"]
    assert "sampleRate" not in Trace.new("t", ["openat"], resolve=resolve).to_dict()["spec"]
    assert (
        Trace.new("t", ["openat"], sample_rate=4, resolve=resolve).to_dict()["spec"]["sampleRate"]
        == 4
    )
    doc = swoll(name="t")
    doc["spec"] = {"syscalls": ["openat"], "sampleRate": 1}
    assert Trace.from_dict(doc, resolve=resolve).to_dict()["spec"]["sampleRate"] == 1
