"""Label selectors: Kubernetes semantics, validation paths, kubectl text, canonical form."""

from __future__ import annotations

import dataclasses
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syshub.errors import SelectorError, TraceSpecError
from syshub.spec.selectors import (
    FrozenMap,
    LabelSelector,
    Requirement,
    validate_label_key,
    validate_label_value,
)

# --------------------------------------------------------------------------- Requirement


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ("a", "b"), {"env": "a"}, True),
        ("In", ("a", "b"), {"env": "c"}, False),
        ("In", ("a",), {}, False),
        ("NotIn", ("a",), {"env": "a"}, False),
        ("NotIn", ("a",), {"env": "b"}, True),
        ("NotIn", ("a",), {}, True),  # absent key satisfies NotIn, as in Kubernetes
        ("Exists", (), {"env": ""}, True),
        ("Exists", (), {"other": "x"}, False),
        ("DoesNotExist", (), {}, True),
        ("DoesNotExist", (), {"env": "x"}, False),
    ],
)
def test_requirement_matches(
    operator: str, values: tuple[str, ...], labels: dict[str, str], expected: bool
) -> None:
    assert Requirement("env", operator, values).matches(labels) is expected


def test_requirement_values_sorted_and_deduplicated() -> None:
    req = Requirement("env", "In", ("b", "a", "b"))
    assert req.values == ("a", "b")
    assert req == Requirement("env", "In", ("a", "b"))
    assert hash(req) == hash(Requirement("env", "In", ("b", "a")))


@pytest.mark.parametrize(
    ("operator", "values", "message"),
    [
        ("Foo", ("a",), "unknown operator 'Foo'"),
        ("In", (), "must be non-empty for operator In"),
        ("NotIn", (), "must be non-empty for operator NotIn"),
        ("Exists", ("a",), "must be empty for operator Exists"),
        ("DoesNotExist", ("a",), "must be empty for operator DoesNotExist"),
        ("in", ("a",), "unknown operator 'in'"),  # case matters, as in the API server
    ],
)
def test_requirement_rejects_bad_operator_or_values(
    operator: str, values: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)):
        Requirement("env", operator, values)


def test_requirement_is_immutable() -> None:
    req = Requirement("env", "Exists")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.key = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- key/value rules


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "a",
        "app.kubernetes.io/name",
        "example.com/My_Key-1.x",
        "x" * 63,
        ("a" * 63 + ".") * 3 + "b" * 61 + "/name",  # 253-character prefix
        "in",
    ],
)
def test_valid_label_keys(key: str) -> None:
    assert validate_label_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "name part must not be empty"),
        ("x" * 64, "at most 63 characters"),
        ("-app", "name part must be"),
        ("app-", "name part must be"),
        ("a b", "name part must be"),
        ("Example.com/app", "prefix 'Example.com' must be a lowercase DNS subdomain"),
        ("/app", "prefix before '/' is empty"),
        ("a/b/c", "at most one '/'"),
        ("example.com/", "name part must not be empty"),
        ("a" * 254 + "/name", "must be a lowercase DNS subdomain"),
        ("caf\u00e9", "name part must be"),
    ],
)
def test_invalid_label_keys(key: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)) as info:
        validate_label_key(key, "spec.x")
    assert info.value.field == "spec.x"


@pytest.mark.parametrize("value", ["", "a", "v1.2_3-x", "Z" * 63])
def test_valid_label_values(value: str) -> None:
    assert validate_label_value(value) == value


@pytest.mark.parametrize("value", ["z" * 64, "-x", "x.", "a/b", "a b", "x\n"])
def test_invalid_label_values(value: str) -> None:
    with pytest.raises(SelectorError, match="invalid label value"):
        validate_label_value(value)


# --------------------------------------------------------------------------- from_dict


def test_from_dict_kubernetes_shape() -> None:
    sel = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "demo", "tier": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "gpu", "operator": "Exists", "values": None},
            ],
        }
    )
    assert dict(sel.match_labels) == {"app": "demo", "tier": "web"}
    assert sel.match_expressions == (
        Requirement("env", "In", ("prod", "staging")),
        Requirement("gpu", "Exists"),
        Requirement("legacy", "DoesNotExist"),
    )
    pod = {"app": "demo", "tier": "web", "env": "prod", "gpu": "1"}
    assert sel.matches(pod)
    assert not sel.matches({**pod, "legacy": "yes"})
    assert not sel.matches({**pod, "env": "dev"})
    assert not sel.matches({k: v for k, v in pod.items() if k != "gpu"})
    assert not sel.matches({**pod, "tier": "db"})


@pytest.mark.parametrize("empty", [None, {}, {"matchLabels": {}, "matchExpressions": []}])
def test_empty_selector_matches_everything(empty: dict[str, object] | None) -> None:
    sel = LabelSelector.from_dict(empty)
    assert sel.is_empty()
    assert sel == LabelSelector()
    assert sel.matches({})
    assert sel.matches({"any": "thing"})
    assert sel.to_dict() == {}
    assert str(sel) == ""


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {
                "matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "Foo", "values": ["x"]},
                ]
            },
            "labelSelector.matchExpressions[1].operator",
            "labelSelector.matchExpressions[1].operator: unknown operator 'Foo' "
            "(expected In, NotIn, Exists, DoesNotExist)",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "labelSelector.matchExpressions[0].values",
            "labelSelector.matchExpressions[0].values: must be non-empty for operator In",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "labelSelector.matchExpressions[0].values",
            "labelSelector.matchExpressions[0].values: must be non-empty for operator In",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "labelSelector.matchExpressions[0].values",
            "labelSelector.matchExpressions[0].values: must be empty for operator Exists",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "bad value"]}]},
            "labelSelector.matchExpressions[0].values[1]",
            "labelSelector.matchExpressions[0].values[1]: invalid label value 'bad value'",
        ),
        (
            {"matchExpressions": [{"key": "A/b", "operator": "Exists"}]},
            "labelSelector.matchExpressions[0].key",
            "labelSelector.matchExpressions[0].key: invalid label key 'A/b'",
        ),
        (
            {"matchExpressions": [{"operator": "Exists"}]},
            "labelSelector.matchExpressions[0].key",
            "labelSelector.matchExpressions[0].key: required",
        ),
        (
            {"matchExpressions": [{"key": "a"}]},
            "labelSelector.matchExpressions[0].operator",
            "labelSelector.matchExpressions[0].operator: required",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": 3}]},
            "labelSelector.matchExpressions[0].operator",
            "labelSelector.matchExpressions[0].operator: expected a string, got integer 3",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            "labelSelector.matchExpressions[0].values",
            "labelSelector.matchExpressions[0].values: expected a list, got string",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "value": []}]},
            "labelSelector.matchExpressions[0].value",
            "labelSelector.matchExpressions[0].value: unknown field",
        ),
        (
            {"matchExpressions": {"key": "a"}},
            "labelSelector.matchExpressions",
            "labelSelector.matchExpressions: expected a list, got mapping",
        ),
        (
            {"matchExpressions": ["a"]},
            "labelSelector.matchExpressions[0]",
            "labelSelector.matchExpressions[0]: expected a mapping, got string",
        ),
        (
            {"matchLabels": ["app=demo"]},
            "labelSelector.matchLabels",
            "labelSelector.matchLabels: expected a mapping, got list",
        ),
        (
            {"matchLabels": {"enabled": True}},
            "labelSelector.matchLabels.enabled",
            "labelSelector.matchLabels.enabled: expected a string, got boolean True "
            "(quote it in YAML)",
        ),
        (
            {"matchLabels": {"bad key": "x"}},
            "labelSelector.matchLabels",
            "labelSelector.matchLabels: invalid label key 'bad key'",
        ),
        (
            {"matchLabels": {"app": "x" * 64}},
            "labelSelector.matchLabels.app",
            "labelSelector.matchLabels.app: invalid label value",
        ),
        (
            {"matchLabel": {"app": "demo"}},
            "labelSelector.matchLabel",
            "labelSelector.matchLabel: unknown field (expected matchLabels, matchExpressions)",
        ),
    ],
)
def test_from_dict_errors_name_the_field(data: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.from_dict(data)
    assert info.value.field == field
    assert str(info.value).startswith(message)
    assert isinstance(info.value, TraceSpecError)
    assert isinstance(info.value, ValueError)


def test_from_dict_uses_the_given_field_prefix() -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.from_dict(
            {"matchExpressions": [{"key": "a", "operator": "Nope"}]}, field="spec.labelSelector"
        )
    assert info.value.field == "spec.labelSelector.matchExpressions[0].operator"


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(SelectorError, match="labelSelector: expected a mapping, got string"):
        LabelSelector.from_dict("app=demo")  # type: ignore[arg-type]


def test_to_dict_shape() -> None:
    sel = LabelSelector.parse("app=demo,env in (b,a),!legacy,gpu")
    assert sel.to_dict() == {
        "matchLabels": {"app": "demo"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "gpu", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert LabelSelector.from_dict(sel.to_dict()) == sel


# --------------------------------------------------------------------------- parse


def test_parse_kubectl_syntax() -> None:
    sel = LabelSelector.parse("app=demo,tier!=web,env in (a,b),env notin (c),gpu,!legacy")
    assert dict(sel.match_labels) == {"app": "demo"}
    assert set(sel.match_expressions) == {
        Requirement("tier", "NotIn", ("web",)),
        Requirement("env", "In", ("a", "b")),
        Requirement("env", "NotIn", ("c",)),
        Requirement("gpu", "Exists"),
        Requirement("legacy", "DoesNotExist"),
    }
    base = {"app": "demo", "env": "a", "gpu": "true"}
    assert sel.matches(base)
    assert sel.matches({**base, "tier": "db"})
    assert not sel.matches({**base, "tier": "web"})
    assert not sel.matches({**base, "env": "c"})
    assert not sel.matches({**base, "legacy": ""})
    assert not sel.matches({"app": "demo", "env": "a"})


def test_parse_double_equals_and_whitespace() -> None:
    a = LabelSelector.parse("  app == demo ,  env in ( a , b )  ,  ! legacy ")
    b = LabelSelector.parse("app=demo,env in (a,b),!legacy")
    assert a == b
    assert str(a) == "app=demo,env in (a,b),!legacy"


def test_parse_empty_text_is_empty_selector() -> None:
    assert LabelSelector.parse("").is_empty()
    assert LabelSelector.parse("   ").is_empty()


def test_parse_empty_values() -> None:
    sel = LabelSelector.parse("a=,b!=,c in (,x)")
    assert dict(sel.match_labels) == {"a": ""}
    assert Requirement("b", "NotIn", ("",)) in sel.match_expressions
    assert Requirement("c", "In", ("", "x")) in sel.match_expressions
    assert sel.matches({"a": "", "c": ""})
    assert not sel.matches({"a": "", "b": "", "c": "x"})


def test_in_with_only_the_empty_value_round_trips() -> None:
    sel = LabelSelector(match_expressions=(Requirement("k", "In", ("",)),))
    text = str(sel)
    assert text == "k in (,)"
    assert LabelSelector.parse(text) == sel


def test_keywords_are_keys_and_values_outside_operator_position() -> None:
    sel = LabelSelector.parse("in=notin,notin in (in),in")
    assert dict(sel.match_labels) == {"in": "notin"}
    assert Requirement("notin", "In", ("in",)) in sel.match_expressions
    assert Requirement("in", "Exists") in sel.match_expressions
    assert LabelSelector.parse(str(sel)) == sel


def test_repeated_equality_keeps_both_requirements() -> None:
    sel = LabelSelector.parse("app=a,app=b")
    assert not sel.matches({"app": "a"})
    assert not sel.matches({"app": "b"})
    assert LabelSelector.parse(str(sel)) == sel
    # the same pair twice is just one requirement
    assert LabelSelector.parse("app=a,app=a") == LabelSelector.parse("app=a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app=demo,", "found end of input at position 9"),
        (",app=demo", "found ',' at position 0"),
        ("env in ()", "the set needs at least one value"),
        ("env notin ()", "the set needs at least one value"),
        ("env in a", "found 'a' at position 7 in 'env in a', expected '('"),
        ("env in (a", "expected ',' or ')'"),
        ("env in (a b)", "expected ',' or ')'"),
        ("a=b=c", "expected ',' or end of input"),
        ("a b", "found 'b'"),
        ("x>1", "operator '>' at position 1 is not supported"),
        ("x<1", "operator '<' at position 1 is not supported"),
        ("!", "expected a label key"),
        ("!a=b", "expected ',' or end of input"),
        ("=b", "expected a label key"),
        ("a=(b)", "expected a label value"),
        ("Bad Key=x", "found 'Key'"),
        ("a@b=x", "invalid label key 'a@b'"),
        ("a=b@c", "invalid label value 'b@c'"),
        ("a in (x,y y)", "expected ',' or ')'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)) as info:
        LabelSelector.parse(text, field="spec.labelSelector")
    assert info.value.field == "spec.labelSelector"


def test_str_is_canonical_and_deterministic() -> None:
    a = LabelSelector.parse("z=1,!y,x notin (b,a),a=2,w in (q),v!=3")
    b = LabelSelector.parse("v!=3,w in (q),a=2,x notin (a,b),!y,z=1")
    assert a == b
    assert str(a) == str(b) == "a=2,z=1,v!=3,w in (q),x notin (a,b),!y"


def test_label_selector_is_hashable_and_immutable() -> None:
    a = LabelSelector.parse("app=demo,env in (a,b)")
    b = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "demo"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}],
        }
    )
    assert a == b
    assert len({a, b}) == 1
    assert {a: 1}[b] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.match_labels = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.match_labels["app"] = "other"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(a)) == a


def test_constructor_validates() -> None:
    with pytest.raises(SelectorError, match="invalid label key"):
        LabelSelector(match_labels={"-bad": "x"})
    with pytest.raises(SelectorError, match="expected a Requirement"):
        LabelSelector(match_expressions=("app=demo",))  # type: ignore[arg-type]
    sel = LabelSelector(match_labels={"b": "2", "a": "1"})
    assert list(sel.match_labels) == ["a", "b"]
    assert isinstance(sel.match_labels, FrozenMap)


def test_frozen_map_behaves_like_a_read_only_dict() -> None:
    m = FrozenMap({"b": "2", "a": "1"})
    assert m == {"a": "1", "b": "2"}
    assert m == FrozenMap([("a", "1"), ("b", "2")])
    assert m != {"a": "1"}
    assert hash(m) == hash(FrozenMap({"a": "1", "b": "2"}))
    assert list(m.items()) == [("a", "1"), ("b", "2")]
    assert pickle.loads(pickle.dumps(m)) == m
    assert "FrozenMap(" in repr(m)


# --------------------------------------------------------------------------- properties

_label_name = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True)
_dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?", fullmatch=True)
_prefix = st.lists(_dns_label, min_size=1, max_size=3).map(".".join)
_label_key = st.one_of(_label_name, st.builds(lambda p, n: f"{p}/{n}", _prefix, _label_name))
_label_value = st.one_of(st.just(""), _label_name)
_requirement = st.one_of(
    st.builds(
        Requirement,
        _label_key,
        st.sampled_from(["In", "NotIn"]),
        st.lists(_label_value, min_size=1, max_size=4).map(tuple),
    ),
    st.builds(Requirement, _label_key, st.sampled_from(["Exists", "DoesNotExist"])),
)
_selector = st.builds(
    LabelSelector,
    st.dictionaries(_label_key, _label_value, max_size=4),
    st.lists(_requirement, max_size=5).map(tuple),
)
_labels = st.dictionaries(_label_key, _label_value, max_size=6)


@settings(max_examples=200)
@given(_selector)
def test_property_str_parse_round_trip(sel: LabelSelector) -> None:
    text = str(sel)
    parsed = LabelSelector.parse(text)
    assert parsed == sel
    assert str(parsed) == text


@given(_selector)
def test_property_dict_round_trip(sel: LabelSelector) -> None:
    assert LabelSelector.from_dict(sel.to_dict()) == sel


@settings(max_examples=200)
@given(_selector, _labels)
def test_property_matching_survives_serialization(
    sel: LabelSelector, labels: dict[str, str]
) -> None:
    expected = sel.matches(labels)
    assert LabelSelector.parse(str(sel)).matches(labels) is expected
    assert LabelSelector.from_dict(sel.to_dict()).matches(labels) is expected


@given(_selector, _labels)
def test_property_selector_is_conjunction(sel: LabelSelector, labels: dict[str, str]) -> None:
    parts = [LabelSelector(match_labels={k: v}) for k, v in sel.match_labels.items()]
    parts += [LabelSelector(match_expressions=(r,)) for r in sel.match_expressions]
    assert sel.matches(labels) is all(p.matches(labels) for p in parts)


@given(_labels, st.data())
def test_property_selector_built_from_labels_matches_them(
    labels: dict[str, str], data: st.DataObject
) -> None:
    subset = data.draw(st.sets(st.sampled_from(sorted(labels))) if labels else st.just(set()))
    sel = LabelSelector(match_labels={k: labels[k] for k in subset})
    assert sel.matches(labels)
    exists = LabelSelector(match_expressions=tuple(Requirement(k, "Exists") for k in subset))
    assert exists.matches(labels)


@given(_label_key, st.lists(_label_value, min_size=1, max_size=3), _labels)
def test_property_in_and_notin_are_complements(
    key: str, values: list[str], labels: dict[str, str]
) -> None:
    in_ = Requirement(key, "In", tuple(values))
    not_in = Requirement(key, "NotIn", tuple(values))
    exists = Requirement(key, "Exists")
    absent = Requirement(key, "DoesNotExist")
    assert in_.matches(labels) is not not_in.matches(labels)
    assert exists.matches(labels) is not absent.matches(labels)
    assert in_.matches(labels) is (key in labels and labels[key] in values)
