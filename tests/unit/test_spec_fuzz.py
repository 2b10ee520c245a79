"""Property tests: whatever a manifest, a YAML text or a selector looks like, loading either
succeeds (and then round-trips) or fails with TraceSpecError / SelectorError carrying a
one-line message and a field path; never another exception."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from support.spec_env import OUR_MANIFEST, SWOLL_MANIFEST, resolve
from syshub.errors import SelectorError, TraceSpecError
from syshub.spec import FieldSelector, LabelSelector, Trace, load_traces

# JSON/YAML-like values, biased towards the keys and words a manifest uses.
_WORDS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "name",
        "namespace",
        "labels",
        "syscalls",
        "labelSelector",
        "fieldSelector",
        "hostSelector",
        "sampleRate",
        "duration",
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
        "In",
        "NotIn",
        "Exists",
        "Trace",
        "TraceList",
        "List",
        "items",
        "syshub.io/v1alpha1",
        "status.phase",
        "read",
        "sys_openat",
        "5m",
        "1h30m",
        "-1s",
        "Running",
        "jobID",
        "job",
        "startTime",
        "completeTime",
        "2021-01-02T03:04:05Z",
        "",
        "a b",
        "app",
        "x" * 70,
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    _WORDS,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_WORDS, st.text(max_size=6)), inner, max_size=5),
        st.dictionaries(st.integers(), inner, max_size=2),
    ),
    max_leaves=25,
)
_BASES = [yaml.safe_load(OUR_MANIFEST), yaml.safe_load(SWOLL_MANIFEST)]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _check_error(exc: TraceSpecError) -> None:
    assert exc.field, "every error names a field"
    assert "\n" not in str(exc)
    assert str(exc) == f"{exc.field}: {exc.reason}"


def _load(doc: object) -> None:
    try:
        trace = Trace.from_dict(doc, resolve=resolve)
    except TraceSpecError as exc:
        _check_error(exc)
        return
    again = Trace.from_dict(trace.to_dict(), resolve=resolve)
    assert again == trace
    assert Trace.from_json(trace.to_json(), resolve=resolve) == trace


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_property_random_documents_fail_only_with_spec_errors(doc: object) -> None:
    _load(doc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_BASES), st.data(), _VALUES)
def test_property_mutated_manifests_fail_only_with_spec_errors(
    base: dict[str, Any], data: st.DataObject, value: object
) -> None:
    """One field of a valid manifest (any depth, the document itself too) replaced by noise."""
    path = data.draw(st.sampled_from(_paths(base)))
    _load(_replace(base, path, value))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_BASES), st.data())
def test_property_dropped_fields_fail_only_with_spec_errors(
    base: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from([p for p in _paths(base) if p]))
    doc = copy.deepcopy(base)
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    _load(doc)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=80), _VALUES.map(lambda v: yaml.safe_dump(v))))
def test_property_random_text_fails_only_with_spec_errors(text: str) -> None:
    assume("\n" in text or ":" in text)  # one line without ':' is read as a file name
    try:
        traces = load_traces(text, resolve=resolve)
    except TraceSpecError as exc:
        _check_error(exc)
    else:
        assert all(isinstance(t, Trace) for t in traces)


@given(_VALUES)
def test_property_json_array_items_carry_their_index(items: object) -> None:
    good = yaml.safe_load(OUR_MANIFEST)
    try:
        load_traces(json.dumps([good, items], default=str), resolve=resolve)
    except TraceSpecError as exc:
        assert exc.field.startswith("[1]")


_SELECTOR_TEXT = st.lists(
    st.sampled_from([*"ab=!,() \t-_./\\<>", "in", "notin", "==", "!=", "x" * 64]), max_size=20
).map("".join)


@settings(max_examples=500)
@given(st.one_of(_SELECTOR_TEXT, st.text(max_size=20)))
def test_property_selector_text_fails_only_with_selector_errors(text: str) -> None:
    for parse in (LabelSelector.parse, FieldSelector.parse):
        try:
            selector = parse(text)  # type: ignore[operator]
        except SelectorError as exc:
            _check_error(exc)
        else:
            assert parse(str(selector)) == selector  # type: ignore[operator]


@settings(max_examples=300)
@given(_VALUES)
def test_property_selector_dicts_fail_only_with_selector_errors(value: object) -> None:
    for build in (LabelSelector.from_dict, FieldSelector.from_dict):
        try:
            selector = build(value, "spec.x")  # type: ignore[operator]
        except SelectorError as exc:
            _check_error(exc)
            assert exc.field.startswith("spec.x")
        else:
            assert build(selector.to_dict()) == selector  # type: ignore[operator]


def test_a_known_tricky_document() -> None:
    """Regression examples: non-string keys deep inside, huge numbers, NaN durations."""
    for doc in (
        {**_BASES[0], "metadata": {"name": "t", "labels": {1: "x"}}},
        {**_BASES[0], "spec": {"syscalls": ["read"], "sampleRate": 2**80}},
        {**_BASES[0], "spec": {"syscalls": ["read"], "duration": float("nan")}},
        {**_BASES[0], "spec": {"syscalls": ["read"], "labelSelector": {"matchLabels": {2: 3}}}},
        {**_BASES[0], "spec": {"syscalls": ["read"], "labelSelector": {"\n": None}}},
        {**_BASES[0], "spec": {"syscalls": ["read"], "a\nb": 1}},
        {**_BASES[0], "metadata": {"name": "t", "labels": {"x": "y", "a\nb": 1}}},
    ):
        with pytest.raises(TraceSpecError) as info:
            Trace.from_dict(doc, resolve=resolve)
        _check_error(info.value)
    with pytest.raises(SelectorError) as sel:
        LabelSelector.from_dict({"matchLabels": {"ok": "1", "a b": 2}}, "spec.labelSelector")
    assert sel.value.field == "spec.labelSelector.matchLabels['a b']"
