"""Selector values: :class:`Requirement`, :class:`LabelSelector` and :class:`FieldSelector`.

Every value is immutable and hashable; construction validates, so a selector that exists is a
valid one. Errors are :class:`~syshub.errors.SelectorError` whose ``field`` is the exact path
of the offending field (``labelSelector.matchExpressions[1].operator``). In a pydantic model a
selector field reads the manifest shape (``FieldSelector`` also a selector string), writes the
manifest shape, and describes itself in JSON schema as ``metav1.LabelSelector``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from syshub.errors import SelectorError
from syshub.spec.common import (
    FrozenMap,
    expect_str,
    key_path,
    str_map,
    type_name,
    validate_label_key,
    validate_label_value,
)
from syshub.spec.selectors import match
from syshub.spec.selectors.parse import (
    DOES_NOT_EXIST,
    EXISTS,
    FIELD_SELECTOR_FIELDS,
    IN,
    NOT_IN,
    OPERATORS,
    FieldTerm,
    LabelTerms,
    check_field_name,
    check_requirement,
    escape_field_value,
    field_terms_from_dict,
    label_terms_from_dict,
    parse_field_text,
    parse_label_text,
)

__all__ = ["FieldSelector", "LabelSelector", "Requirement", "selector_json_schema"]

_OPERATOR_ORDER: Final = {op: i for i, op in enumerate(OPERATORS)}
_FIELD_OPS: Final = ("=", "==", "!=")


def selector_json_schema(description: str, operators: tuple[str, ...]) -> JsonSchemaValue:
    """JSON schema of the ``metav1.LabelSelector`` shape (no ``$ref``, CRD-friendly)."""
    strings = {"type": "array", "items": {"type": "string"}}
    expression = {
        "type": "object",
        "required": ["key", "operator"],
        "properties": {
            "key": {"type": "string"},
            "operator": {"type": "string", "enum": list(operators)},
            "values": strings,
        },
    }
    return {
        "type": "object",
        "description": description,
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array", "items": expression},
        },
    }


class _PydanticSelector:
    """pydantic support shared by the selectors: a field reads the selector itself or what
    ``from_dict`` reads (errors relative to the field), writes ``to_dict()``, and describes
    itself as ``metav1.LabelSelector`` with the class's own operators."""

    __slots__ = ()
    _schema_description: ClassVar[str]
    _schema_operators: ClassVar[tuple[str, ...]]

    @classmethod
    def from_dict(cls, d: object, field: str) -> Self:
        raise NotImplementedError

    def to_dict(self) -> dict[str, object]:
        raise NotImplementedError

    @classmethod
    def _validate(cls, value: object) -> Self:
        return value if isinstance(value, cls) else cls.from_dict(value, "")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.to_dict()
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return selector_json_schema(cls._schema_description, cls._schema_operators)


# --------------------------------------------------------------------------- label selectors


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry. ``values`` are stored sorted and without duplicates."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        values = self.values
        if isinstance(values, str) or not isinstance(values, Iterable):
            raise SelectorError("requirement.values", "expected a sequence of strings")
        normalized = tuple(sorted(set(values)))
        check_requirement(self.key, self.operator, normalized, "requirement")
        object.__setattr__(self, "values", normalized)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (``NotIn`` holds for an absent key)."""
        return match.requirement_matches(self.key, self.operator, self.values, labels)

    def to_dict(self) -> dict[str, object]:
        """The ``matchExpressions`` entry (``values`` omitted for Exists/DoesNotExist)."""
        out: dict[str, object] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        return out

    def _sort_key(self) -> tuple[str, int, tuple[str, ...]]:
        return (self.key, _OPERATOR_ORDER[self.operator], self.values)

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator == NOT_IN and len(self.values) == 1:
            return f"{self.key}!={self.values[0]}"
        # ("",) alone must not print as "()", which means "no values"; "(,)" parses back to {""}.
        listed = "," if self.values == ("",) else ",".join(self.values)
        word = "in" if self.operator == IN else "notin"
        return f"{self.key} {word} ({listed})"


@dataclass(frozen=True, slots=True)
class LabelSelector(_PydanticSelector):
    """A ``metav1.LabelSelector``: ``match_labels`` AND every ``match_expressions`` entry.

    Stored canonically: labels in an immutable sorted map, expressions sorted and de-duplicated
    (order and repetition do not change an AND). The empty selector matches everything.
    """

    _schema_description: ClassVar[str] = "pod label selector (metav1.LabelSelector)"
    _schema_operators: ClassVar[tuple[str, ...]] = OPERATORS

    match_labels: Mapping[str, str] = field(default_factory=FrozenMap)
    match_expressions: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        path = "labelSelector.matchLabels"
        labels = str_map(self.match_labels, path, SelectorError)
        for key, value in labels.items():
            validate_label_key(key, path)
            validate_label_value(value, path + key_path(key))
        exprs = tuple(self.match_expressions)
        for i, expr in enumerate(exprs):
            if not isinstance(expr, Requirement):
                raise SelectorError(
                    f"labelSelector.matchExpressions[{i}]",
                    f"expected a Requirement, got {type_name(expr)}",
                )
        object.__setattr__(self, "match_labels", FrozenMap(labels))
        object.__setattr__(
            self, "match_expressions", tuple(sorted(set(exprs), key=Requirement._sort_key))
        )

    @classmethod
    def from_dict(cls, d: object, field: str = "labelSelector") -> LabelSelector:
        """Build from the Kubernetes JSON shape; ``None`` or ``{}`` is the empty selector."""
        return _from_terms(label_terms_from_dict(d, field))

    @classmethod
    def parse(cls, text: str, field: str = "labelSelector") -> LabelSelector:
        """Parse ``kubectl -l`` syntax: ``app=demo,tier!=web,env in (a,b),env notin (c),gpu,!x``.

        ``=``/``==`` put the pair in ``match_labels`` (a second, different value for the same key
        becomes an ``In`` expression so both still have to hold); ``!=`` is ``NotIn`` with one
        value. Keys and values are validated. ``in``/``notin`` are keywords only in operator
        position, so a label may be called ``in``. Empty text is the empty selector.
        """
        return _from_terms(parse_label_text(text, field))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod (or container) with ``labels`` is selected."""
        exprs = ((r.key, r.operator, r.values) for r in self.match_expressions)
        return match.labels_match(self.match_labels, exprs, labels)

    def is_empty(self) -> bool:
        """True for the selector that matches everything."""
        return not self.match_labels and not self.match_expressions

    def to_dict(self) -> dict[str, object]:
        """The Kubernetes JSON shape; empty parts are omitted (the empty selector is ``{}``)."""
        out: dict[str, object] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            out["matchExpressions"] = [expr.to_dict() for expr in self.match_expressions]
        return out

    def __str__(self) -> str:
        parts = [f"{key}={value}" for key, value in self.match_labels.items()]
        parts.extend(str(expr) for expr in self.match_expressions)
        return ",".join(parts)


def _from_terms(terms: LabelTerms) -> LabelSelector:
    labels, exprs = terms
    return LabelSelector(FrozenMap(labels), tuple(Requirement(k, op, vs) for k, op, vs in exprs))


# --------------------------------------------------------------------------- field selectors


@dataclass(frozen=True, slots=True)
class FieldSelector(_PydanticSelector):
    """A pod field selector: every ``(field, op, value)`` term must hold.

    ``op`` is ``"="`` or ``"!="`` (``"=="`` is accepted and stored as ``"="``); terms are
    stored sorted and de-duplicated. A field that is missing from the tested mapping reads as
    ``""``, as in Kubernetes. The empty selector matches everything.
    """

    _schema_description: ClassVar[str] = (
        "pod field selector in swoll's shape: matchLabels map field paths "
        f"({', '.join(FIELD_SELECTOR_FIELDS)}) to values; a selector string also loads"
    )
    _schema_operators: ClassVar[tuple[str, ...]] = (IN, NOT_IN)

    requirements: tuple[FieldTerm, ...] = ()

    def __post_init__(self) -> None:
        terms: set[FieldTerm] = set()
        for i, term in enumerate(self.requirements):
            path = f"fieldSelector[{i}]"
            if not isinstance(term, tuple) or len(term) != 3:
                raise SelectorError(path, "expected a (field, operator, value) tuple")
            name, op, value = term
            check_field_name(expect_str(name, path, SelectorError), path)
            if op not in _FIELD_OPS:
                raise SelectorError(path, f"unknown operator {op!r} (expected =, ==, !=)")
            terms.add((name, "=" if op == "==" else op, expect_str(value, path, SelectorError)))
        object.__setattr__(self, "requirements", tuple(sorted(terms)))

    @classmethod
    def parse(cls, text: str, field: str = "fieldSelector") -> FieldSelector:
        """Parse ``kubectl --field-selector`` syntax: ``status.phase=Running,metadata.name!=x``.

        Whitespace around field names and values is dropped; ``\\,``, ``\\=``, ``\\!`` and
        ``\\\\`` escape those characters in values. Empty terms are skipped.
        """
        return cls(tuple(parse_field_text(text, field)))

    @classmethod
    def from_dict(cls, d: object, field: str = "fieldSelector") -> FieldSelector:
        """Build from swoll's shape or a string.

        swoll stores field selectors in a ``metav1.LabelSelector`` whose ``matchLabels`` map a
        field path to a value (``{"matchLabels": {"status.phase": "Running"}}``). Also accepted:
        ``matchExpressions`` with ``In`` and exactly one value (``=``) or ``NotIn`` (one ``!=``
        per value), a plain selector string, and ``None`` (empty).
        """
        return cls(tuple(field_terms_from_dict(d, field)))

    @staticmethod
    def pod_fields(pod: Mapping[str, object]) -> dict[str, str]:
        """The four selectable fields of a pod given in Kubernetes JSON shape (missing -> "").

        The snake_case spelling of the Python Kubernetes client's ``to_dict()`` is read too.
        """
        return match.pod_fields(pod)

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether ``fields`` (field path -> value, e.g. from :meth:`pod_fields`) satisfy all."""
        return match.fields_match(self.requirements, fields)

    def is_empty(self) -> bool:
        return not self.requirements

    def to_dict(self) -> dict[str, object]:
        """swoll's shape: ``=`` terms in ``matchLabels`` (a repeated field's further values as
        ``In`` expressions), ``!=`` terms as ``NotIn`` expressions grouped by field."""
        labels: dict[str, str] = {}
        extra_in: list[tuple[str, str]] = []
        not_in: dict[str, list[str]] = {}
        for name, op, value in self.requirements:
            if op == "!=":
                not_in.setdefault(name, []).append(value)
            elif name in labels:
                extra_in.append((name, value))
            else:
                labels[name] = value
        exprs: list[dict[str, object]] = [
            {"key": name, "operator": IN, "values": [value]} for name, value in extra_in
        ]
        exprs.extend(
            {"key": name, "operator": NOT_IN, "values": values} for name, values in not_in.items()
        )
        out: dict[str, object] = {}
        if labels:
            out["matchLabels"] = labels
        if exprs:
            out["matchExpressions"] = exprs
        return out

    def __str__(self) -> str:
        return ",".join(
            f"{name}{op}{escape_field_value(value)}" for name, op, value in self.requirements
        )
