"""Reading selectors: the ``kubectl -l`` / ``--field-selector`` text syntax and the manifest
(dict) shapes, down to validated plain data. :mod:`.model` turns that data into values.

Errors are :class:`~syshub.errors.SelectorError` naming the field path. Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from syshub.errors import SelectorError
from syshub.spec.common import (
    check_keys,
    expect_list,
    expect_mapping,
    expect_str,
    join_path,
    key_path,
    str_map,
    type_name,
    validate_label_key,
    validate_label_value,
)

__all__ = [
    "DOES_NOT_EXIST",
    "EXISTS",
    "FIELD_SELECTOR_FIELDS",
    "IN",
    "NOT_IN",
    "OPERATORS",
    "FieldTerm",
    "LabelTerms",
    "RequirementData",
    "check_field_name",
    "check_requirement",
    "escape_field_value",
    "field_terms_from_dict",
    "label_terms_from_dict",
    "parse_field_text",
    "parse_label_text",
]

IN: Final = "In"
NOT_IN: Final = "NotIn"
EXISTS: Final = "Exists"
DOES_NOT_EXIST: Final = "DoesNotExist"
#: The ``matchExpressions`` operators, in canonical order.
OPERATORS: Final[tuple[str, ...]] = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)

#: Pod fields a field selector may test (the ones the pod API supports that matter here).
FIELD_SELECTOR_FIELDS: Final[tuple[str, ...]] = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
)

#: ``(key, operator, values)`` of one ``matchExpressions`` entry.
RequirementData = tuple[str, str, tuple[str, ...]]
#: ``matchLabels`` and the expressions of a label selector.
LabelTerms = tuple[dict[str, str], list[RequirementData]]
#: ``(field, "=" | "==" | "!=", value)`` of a field selector.
FieldTerm = tuple[str, str, str]

_E: Final = SelectorError
_EXPR_KEYS: Final = ("key", "operator", "values")
_SELECTOR_KEYS: Final = ("matchLabels", "matchExpressions")


# --------------------------------------------------------------------------- validation


def check_requirement(key: str, operator: str, values: tuple[str, ...], path: str) -> None:
    """Validate one expression; ``path`` is its own path (``...matchExpressions[0]``)."""
    validate_label_key(key, join_path(path, ".key"))
    if operator not in OPERATORS:
        raise _E(
            join_path(path, ".operator"),
            f"unknown operator {operator!r} (expected {', '.join(OPERATORS)})",
        )
    if operator in (IN, NOT_IN) and not values:
        raise _E(join_path(path, ".values"), f"must be non-empty for operator {operator}")
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        raise _E(join_path(path, ".values"), f"must be empty for operator {operator}")
    for i, value in enumerate(values):
        validate_label_value(value, join_path(path, f".values[{i}]"))


def check_field_name(name: str, path: str) -> None:
    if name not in FIELD_SELECTOR_FIELDS:
        raise _E(path, f"unknown field {name!r} (supported: {', '.join(FIELD_SELECTOR_FIELDS)})")


# --------------------------------------------------------------------------- dict shapes


def _expression(raw: object, path: str) -> tuple[str, str, list[str]]:
    """``key``, ``operator`` and ``values`` of a ``matchExpressions`` entry, type-checked."""
    body = expect_mapping(raw, path, _E)
    check_keys(body, _EXPR_KEYS, path, _E)
    for required in ("key", "operator"):
        if required not in body:
            raise _E(join_path(path, f".{required}"), "required")
    key = expect_str(body["key"], join_path(path, ".key"), _E)
    operator = expect_str(body["operator"], join_path(path, ".operator"), _E)
    raw_values = body.get("values")
    values_path = join_path(path, ".values")
    values = [
        expect_str(v, f"{values_path}[{i}]", _E)
        for i, v in enumerate(
            expect_list([] if raw_values is None else raw_values, values_path, _E)
        )
    ]
    return key, operator, values


def _selector_body(d: object, field: str) -> tuple[dict[str, str], list[object]]:
    """``matchLabels`` (str -> str) and the raw ``matchExpressions`` of a selector mapping."""
    body = expect_mapping(d, field, _E)
    check_keys(body, _SELECTOR_KEYS, field, _E)
    labels = str_map(body.get("matchLabels"), join_path(field, ".matchLabels"), _E)
    raw = body.get("matchExpressions")
    exprs = [] if raw is None else expect_list(raw, join_path(field, ".matchExpressions"), _E)
    return labels, list(exprs)


def label_terms_from_dict(d: object, field: str) -> LabelTerms:
    """The ``metav1.LabelSelector`` shape, validated; ``None`` is the empty selector."""
    if d is None:
        return {}, []
    labels, raw_exprs = _selector_body(d, field)
    labels_path = join_path(field, ".matchLabels")
    for key, value in labels.items():
        validate_label_key(key, labels_path)
        validate_label_value(value, join_path(labels_path, key_path(key)))
    exprs: list[RequirementData] = []
    for i, raw in enumerate(raw_exprs):
        path = join_path(field, f".matchExpressions[{i}]")
        key, operator, values = _expression(raw, path)
        check_requirement(key, operator, tuple(values), path)
        exprs.append((key, operator, tuple(values)))
    return labels, exprs


def field_terms_from_dict(d: object, field: str) -> list[FieldTerm]:
    """swoll's field selector shape (a ``metav1.LabelSelector`` whose ``matchLabels`` map field
    paths to values), a selector string, or ``None`` (no terms).

    ``matchExpressions`` may use ``In`` with exactly one value (``=``) or ``NotIn`` (one ``!=``
    per value); fields have no OR and no existence test.
    """
    if d is None:
        return []
    if isinstance(d, str):
        return parse_field_text(d, field)
    labels, raw_exprs = _selector_body(d, field)
    terms: list[FieldTerm] = []
    for name, value in labels.items():
        check_field_name(name, join_path(field, ".matchLabels"))
        terms.append((name, "=", value))
    for i, raw in enumerate(raw_exprs):
        path = join_path(field, f".matchExpressions[{i}]")
        name, operator, values = _expression(raw, path)
        check_field_name(name, join_path(path, ".key"))
        if operator == IN:
            if len(values) != 1:
                raise _E(
                    join_path(path, ".values"),
                    "a field selector can test In with exactly one value (fields have no OR)",
                )
            terms.append((name, "=", values[0]))
        elif operator == NOT_IN:
            if not values:
                raise _E(join_path(path, ".values"), "must be non-empty for operator NotIn")
            terms.extend((name, "!=", value) for value in values)
        elif operator in (EXISTS, DOES_NOT_EXIST):
            raise _E(
                join_path(path, ".operator"),
                f"operator {operator} is not supported in a field selector",
            )
        else:
            raise _E(
                join_path(path, ".operator"),
                f"unknown operator {operator!r} (expected In or NotIn)",
            )
    return terms


# --------------------------------------------------------------------------- label text

_IDENT: Final = "identifier"
_EOF: Final = "end of input"
_SPECIAL: Final = frozenset(" \t\r\n,()=!<>")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # _IDENT, _EOF, or the operator/punctuation text itself
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("==", "!="), i):
            tokens.append(_Token(text[i : i + 2], text[i : i + 2], i))
            i += 2
        elif ch in _SPECIAL:
            tokens.append(_Token(ch, ch, i))
            i += 1
        else:
            start = i
            while i < n and text[i] not in _SPECIAL and not text[i].isspace():
                i += 1
            tokens.append(_Token(_IDENT, text[start:i], start))
    tokens.append(_Token(_EOF, "", n))
    return tokens


class _LabelParser:
    """Recursive descent over the tokens of ``kubectl -l`` text."""

    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.tokens = _tokenize(text)
        self.pos = 0
        self.labels: dict[str, str] = {}
        self.exprs: list[RequirementData] = []

    def error(self, tok: _Token, expected: str) -> SelectorError:
        found = "end of input" if tok.kind == _EOF else repr(tok.text)
        return _E(
            self.field, f"found {found} at position {tok.pos} in {self.text!r}, expected {expected}"
        )

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != _EOF:
            self.pos += 1
        return tok

    def parse(self) -> LabelTerms:
        if self.peek().kind == _EOF:
            return {}, []
        while True:
            self.requirement()
            tok = self.take()
            if tok.kind == _EOF:
                return self.labels, self.exprs
            if tok.kind != ",":
                raise self.error(tok, "',' or end of input")

    def key(self) -> str:
        tok = self.take()
        if tok.kind != _IDENT:
            raise self.error(tok, "a label key")
        return validate_label_key(tok.text, self.field)

    def value(self) -> str:
        """An optional value: absent (before ',', ')' or the end) means the empty string."""
        if self.peek().kind == _IDENT:
            return validate_label_value(self.take().text, self.field)
        return ""

    def requirement(self) -> None:
        if self.peek().kind == "!":
            self.take()
            self.exprs.append((self.key(), DOES_NOT_EXIST, ()))
            return
        key = self.key()
        tok = self.peek()
        if tok.kind in (",", _EOF):
            self.exprs.append((key, EXISTS, ()))
        elif tok.kind in ("=", "=="):
            self.take()
            self.end_of_value()
            value = self.value()
            if key not in self.labels:
                self.labels[key] = value
            elif self.labels[key] != value:
                self.exprs.append((key, IN, (value,)))
        elif tok.kind == "!=":
            self.take()
            self.end_of_value()
            self.exprs.append((key, NOT_IN, (self.value(),)))
        elif tok.kind == _IDENT and tok.text in ("in", "notin"):
            self.take()
            values = self.value_list()
            if not values:
                raise _E(self.field, f"{key!r} {tok.text} (): the set needs at least one value")
            self.exprs.append((key, IN if tok.text == "in" else NOT_IN, tuple(values)))
        elif tok.kind in ("<", ">"):
            raise _E(
                self.field,
                f"operator {tok.text!r} at position {tok.pos} is not supported "
                "(use =, ==, !=, in, notin, KEY or !KEY)",
            )
        else:
            raise self.error(tok, "'=', '==', '!=', 'in', 'notin', ',' or end of input")

    def end_of_value(self) -> None:
        """After an equality operator: a value, or nothing (empty value) before ',' or the end."""
        if self.peek().kind not in (_IDENT, ",", _EOF):
            raise self.error(self.peek(), "a label value")

    def value_list(self) -> list[str]:
        tok = self.take()
        if tok.kind != "(":
            raise self.error(tok, "'('")
        if self.peek().kind == ")":
            self.take()
            return []
        values: list[str] = []
        while True:
            values.append(self.value())
            tok = self.take()
            if tok.kind == ")":
                return values
            if tok.kind != ",":
                raise self.error(tok, "',' or ')'")


def parse_label_text(text: str, field: str) -> LabelTerms:
    """``kubectl -l`` syntax (``app=demo,tier!=web,env in (a,b),gpu,!x``), validated.

    ``=``/``==`` put the pair in ``matchLabels`` (a second, different value for the same key
    becomes an ``In`` expression so both still have to hold); ``!=`` is ``NotIn`` with one
    value; ``in``/``notin`` are keywords only in operator position.
    """
    if not isinstance(text, str):
        raise _E(field, f"expected a string, got {type_name(text)}")
    return _LabelParser(text, field).parse()


# --------------------------------------------------------------------------- field text

_FIELD_TERM_RE: Final = re.compile(r"([^=!\\]*)(==|!=|=)(.*)\Z", re.DOTALL)
_ESCAPED: Final = "\\,=!"


def escape_field_value(value: str) -> str:
    return "".join(f"\\{ch}" if ch in _ESCAPED else ch for ch in value)


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not preceded by an escaping backslash (escapes kept)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape_field_value(raw: str, path: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            if i + 1 >= len(raw) or raw[i + 1] not in _ESCAPED:
                raise _E(path, f"invalid escape sequence in field value {raw!r}")
            out.append(raw[i + 1])
            i += 2
            continue
        if ch in ",=!":
            raise _E(path, f"unescaped {ch!r} in field value {raw!r} (write '\\{ch}')")
        out.append(ch)
        i += 1
    return "".join(out)


def parse_field_text(text: str, field: str) -> list[FieldTerm]:
    """``kubectl --field-selector`` syntax (``status.phase=Running,metadata.name!=x``).

    Whitespace around field names and values is dropped; ``\\,``, ``\\=``, ``\\!`` and ``\\\\``
    escape those characters in values. Empty terms are skipped.
    """
    if not isinstance(text, str):
        raise _E(field, f"expected a string, got {type_name(text)}")
    terms: list[FieldTerm] = []
    for part in _split_unescaped(text, ","):
        if not part.strip():
            continue
        match = _FIELD_TERM_RE.match(part)
        if match is None:
            raise _E(field, f"invalid term {part.strip()!r} (expected FIELD=VALUE or FIELD!=VALUE)")
        name = match.group(1).strip()
        check_field_name(name, field)
        terms.append((name, match.group(2), _unescape_field_value(match.group(3).strip(), field)))
    return terms
