"""Field selectors: kubectl text with escapes, swoll's dict shape, pod fields, matching."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syshub.errors import SelectorError
from syshub.spec.selectors import FieldSelector

# --------------------------------------------------------------------------- FieldSelector


def test_field_selector_parse_and_match() -> None:
    sel = FieldSelector.parse("status.phase=Running,metadata.name!=x,spec.nodeName==node-1")
    assert sel.requirements == (
        ("metadata.name", "!=", "x"),
        ("spec.nodeName", "=", "node-1"),
        ("status.phase", "=", "Running"),
    )
    fields = {"status.phase": "Running", "metadata.name": "web", "spec.nodeName": "node-1"}
    assert sel.matches(fields)
    assert not sel.matches({**fields, "metadata.name": "x"})
    assert not sel.matches({**fields, "status.phase": "Pending"})
    assert not sel.matches({"status.phase": "Running", "metadata.name": "web"})
    assert str(sel) == "metadata.name!=x,spec.nodeName=node-1,status.phase=Running"


def test_field_selector_missing_field_reads_as_empty() -> None:
    assert FieldSelector.parse("metadata.namespace!=kube-system").matches({})
    assert not FieldSelector.parse("status.phase=Running").matches({})
    assert FieldSelector.parse("status.phase=").matches({})


def test_field_selector_empty() -> None:
    for sel in (FieldSelector(), FieldSelector.parse(""), FieldSelector.from_dict(None)):
        assert sel.is_empty()
        assert sel.matches({"status.phase": "Failed"})
        assert sel.to_dict() == {}
        assert str(sel) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.labels=x", "unknown field 'metadata.labels' (supported: metadata.name, "),
        ("status.podIP=1.2.3.4", "unknown field 'status.podIP'"),
        ("status.phase", "invalid term 'status.phase'"),
        ("status.phase=a=b", "unescaped '='"),
        ("status.phase=a\\x", "invalid escape sequence"),
    ],
)
def test_field_selector_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)) as info:
        FieldSelector.parse(text)
    assert info.value.field == "fieldSelector"


def test_field_selector_escapes_round_trip() -> None:
    sel = FieldSelector((("metadata.name", "=", "a,b=c!d\\e"),))
    text = str(sel)
    assert text == "metadata.name=a\\,b\\=c\\!d\\\\e"
    assert FieldSelector.parse(text) == sel


def test_field_selector_from_swoll_dict() -> None:
    sel = FieldSelector.from_dict({"matchLabels": {"status.phase": "Running"}})
    assert sel == FieldSelector.parse("status.phase=Running")
    assert sel.to_dict() == {"matchLabels": {"status.phase": "Running"}}


def test_field_selector_from_dict_expressions_and_string() -> None:
    sel = FieldSelector.from_dict(
        {
            "matchLabels": {"spec.nodeName": "n1"},
            "matchExpressions": [
                {"key": "metadata.name", "operator": "NotIn", "values": ["a", "b"]},
                {"key": "status.phase", "operator": "In", "values": ["Running"]},
            ],
        }
    )
    assert sel == FieldSelector.parse(
        "spec.nodeName=n1,metadata.name!=a,metadata.name!=b,status.phase=Running"
    )
    assert FieldSelector.from_dict("status.phase=Running") == FieldSelector.parse(
        "status.phase=Running"
    )
    assert FieldSelector.from_dict(sel.to_dict()) == sel


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"matchLabels": {"status.podIP": "x"}},
            "spec.fieldSelector.matchLabels",
            "unknown field 'status.podIP'",
        ),
        (
            {"matchLabels": {"status.phase": 1}},
            "spec.fieldSelector.matchLabels.status.phase",
            "expected a string, got integer 1",
        ),
        (
            {"matchExpressions": [{"key": "status.phase", "operator": "Exists"}]},
            "spec.fieldSelector.matchExpressions[0].operator",
            "operator Exists is not supported in a field selector",
        ),
        (
            {"matchExpressions": [{"key": "status.phase", "operator": "In", "values": ["a", "b"]}]},
            "spec.fieldSelector.matchExpressions[0].values",
            "exactly one value",
        ),
        (
            {"matchExpressions": [{"key": "status.phase", "operator": "Gt", "values": ["1"]}]},
            "spec.fieldSelector.matchExpressions[0].operator",
            "unknown operator 'Gt'",
        ),
        (
            {"matchExpressions": [{"key": "nope", "operator": "In", "values": ["1"]}]},
            "spec.fieldSelector.matchExpressions[0].key",
            "unknown field 'nope'",
        ),
        ({"status.phase": "Running"}, "spec.fieldSelector.status.phase", "unknown field"),
        (["status.phase=Running"], "spec.fieldSelector", "expected a mapping, got list"),
    ],
)
def test_field_selector_from_dict_errors(data: object, field: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)) as info:
        FieldSelector.from_dict(data, field="spec.fieldSelector")
    assert info.value.field == field


def test_field_selector_to_dict_repeated_field() -> None:
    sel = FieldSelector.parse("metadata.name=a,metadata.name=b,status.phase!=Failed")
    data = sel.to_dict()
    assert data == {
        "matchLabels": {"metadata.name": "a"},
        "matchExpressions": [
            {"key": "metadata.name", "operator": "In", "values": ["b"]},
            {"key": "status.phase", "operator": "NotIn", "values": ["Failed"]},
        ],
    }
    assert FieldSelector.from_dict(data) == sel


def test_field_selector_constructor_validates_and_normalizes() -> None:
    sel = FieldSelector((("status.phase", "==", "Running"), ("status.phase", "=", "Running")))
    assert sel.requirements == (("status.phase", "=", "Running"),)
    with pytest.raises(SelectorError, match="unknown field 'x'"):
        FieldSelector((("x", "=", "y"),))
    with pytest.raises(SelectorError, match="unknown operator '<'"):
        FieldSelector((("status.phase", "<", "y"),))
    assert len({sel, FieldSelector.parse("status.phase=Running")}) == 1


def test_pod_fields() -> None:
    pod: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-7", "containers": []},
        "status": {"phase": "Running"},
    }
    fields = FieldSelector.pod_fields(pod)
    assert fields == {
        "metadata.name": "web-1",
        "metadata.namespace": "shop",
        "spec.nodeName": "node-7",
        "status.phase": "Running",
    }
    assert FieldSelector.parse("status.phase=Running,spec.nodeName=node-7").matches(fields)
    # a pending pod not yet scheduled: missing parts read as empty strings
    assert FieldSelector.pod_fields({"metadata": {"name": "p"}}) == {
        "metadata.name": "p",
        "metadata.namespace": "",
        "spec.nodeName": "",
        "status.phase": "",
    }
    # the Python Kubernetes client's to_dict() spelling
    assert FieldSelector.pod_fields({"spec": {"node_name": "n"}})["spec.nodeName"] == "n"


# --------------------------------------------------------------------------- properties

_field_name = st.sampled_from(
    ["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"]
)
_field_value = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zs"]), max_size=8)
_field_selector = st.builds(
    FieldSelector,
    st.lists(
        st.tuples(_field_name, st.sampled_from(["=", "==", "!="]), _field_value), max_size=5
    ).map(tuple),
)


@settings(max_examples=300)
@given(_field_selector, st.dictionaries(_field_name, _field_value))
def test_property_field_selector_round_trips(sel: FieldSelector, fields: dict[str, str]) -> None:
    assert FieldSelector.parse(str(sel)) == sel
    assert FieldSelector.from_dict(sel.to_dict()) == sel
    assert FieldSelector.parse(str(sel)).matches(fields) is sel.matches(fields)
    assert sel.matches(fields) is all(
        (fields.get(name, "") == value) is (op == "=") for name, op, value in sel.requirements
    )
