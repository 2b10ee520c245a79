"""Kubernetes label and field selectors, with the API server's validation rules.

Traces pick pods with a ``labelSelector`` (``metav1.LabelSelector``: ``matchLabels`` plus
``matchExpressions``) and a ``fieldSelector``. Both can be written as a manifest dict or as the
string syntax of ``kubectl -l`` / ``kubectl --field-selector``. Every value here is immutable and
hashable; construction validates, so a selector that exists is a valid one. Errors are
:class:`~syshub.errors.SelectorError` whose ``field`` is the exact path of the offending field
(``labelSelector.matchExpressions[1].operator``).

Semantics follow ``k8s.io/apimachinery/pkg/labels``: every requirement must hold (AND); ``In``
needs the key present with one of the values; ``NotIn`` also matches when the key is absent; an
empty selector matches everything. Pure Python; no privileges needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from syshub.errors import SelectorError

__all__ = [
    "FIELD_SELECTOR_FIELDS",
    "OPERATORS",
    "FieldSelector",
    "FrozenMap",
    "LabelSelector",
    "Requirement",
    "validate_label_key",
    "validate_label_value",
]

IN: Final = "In"
NOT_IN: Final = "NotIn"
EXISTS: Final = "Exists"
DOES_NOT_EXIST: Final = "DoesNotExist"
#: The ``matchExpressions`` operators, in canonical order.
OPERATORS: Final[tuple[str, ...]] = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)
_OPERATOR_ORDER: Final = {op: i for i, op in enumerate(OPERATORS)}

#: Pod fields a :class:`FieldSelector` may test (the ones the pod API supports that matter here).
FIELD_SELECTOR_FIELDS: Final[tuple[str, ...]] = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
)

_NAME_MAX: Final = 63
_PREFIX_MAX: Final = 253
_NAME_RE: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN_RE: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_NAME_RULE: Final = "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"


# --------------------------------------------------------------------------- helpers


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (labels, annotations).

    Iterates in sorted key order so that equal maps print and serialize identically.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = data.items() if isinstance(data, Mapping) else data
        self._data: dict[str, str] = dict(sorted(dict(items).items()))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, str]]]:
        return (FrozenMap, (self._data,))


def _type_name(obj: object) -> str:
    """The YAML/JSON name of ``obj``'s type, for error messages."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "boolean"
    if isinstance(obj, int):
        return "integer"
    if isinstance(obj, float):
        return "number"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, Mapping):
        return "mapping"
    if isinstance(obj, list | tuple):
        return "list"
    return type(obj).__name__


def _expect_str(obj: object, path: str) -> str:
    if not isinstance(obj, str):
        hint = " (quote it in YAML)" if isinstance(obj, bool | int | float) else ""
        raise SelectorError(path, f"expected a string, got {_type_name(obj)} {obj!r}{hint}")
    return obj


def _expect_mapping(obj: object, path: str) -> Mapping[str, object]:
    if not isinstance(obj, Mapping):
        raise SelectorError(path, f"expected a mapping, got {_type_name(obj)}")
    for key in obj:
        _expect_str(key, path)
    return obj


def _expect_list(obj: object, path: str) -> list[object] | tuple[object, ...]:
    if not isinstance(obj, list | tuple):
        raise SelectorError(path, f"expected a list, got {_type_name(obj)}")
    return obj


def _check_keys(d: Mapping[str, object], allowed: tuple[str, ...], path: str) -> None:
    for key in d:
        if key not in allowed:
            raise SelectorError(f"{path}.{key}", f"unknown field (expected {', '.join(allowed)})")


def _str_map(obj: object, path: str) -> dict[str, str]:
    """A ``str -> str`` mapping; the error names the key whose value has the wrong type."""
    if obj is None:
        return {}
    d = _expect_mapping(obj, path)
    return {k: _expect_str(v, f"{path}.{k}") for k, v in d.items()}


def validate_label_key(key: str, field: str = "labels") -> str:
    """Check a label key (``[prefix/]name``) like the API server does; return it unchanged.

    ``prefix`` is an optional lowercase DNS subdomain of at most 253 characters; ``name`` is 1-63
    characters of ``[A-Za-z0-9._-]`` with an alphanumeric at both ends.
    """
    if not isinstance(key, str):
        raise SelectorError(field, f"label key must be a string, got {_type_name(key)}")
    if key.count("/") > 1:
        raise SelectorError(field, f"invalid label key {key!r}: at most one '/' is allowed")
    prefix, _, name = key.rpartition("/")
    if "/" in key:
        if not prefix:
            raise SelectorError(field, f"invalid label key {key!r}: prefix before '/' is empty")
        if len(prefix) > _PREFIX_MAX:
            raise SelectorError(
                field,
                f"invalid label key {key!r}: prefix must be at most {_PREFIX_MAX} characters",
            )
        if not _DNS_SUBDOMAIN_RE.fullmatch(prefix):
            raise SelectorError(
                field,
                f"invalid label key {key!r}: prefix {prefix!r} must be a lowercase DNS subdomain "
                "(a-z, 0-9, '-' and '.', alphanumeric at both ends)",
            )
    if not name:
        raise SelectorError(field, f"invalid label key {key!r}: name part must not be empty")
    if len(name) > _NAME_MAX:
        raise SelectorError(
            field, f"invalid label key {key!r}: name part must be at most {_NAME_MAX} characters"
        )
    if not _NAME_RE.fullmatch(name):
        raise SelectorError(field, f"invalid label key {key!r}: name part must be {_NAME_RULE}")
    return key


def validate_label_value(value: str, field: str = "labels") -> str:
    """Check a label value (empty, or 1-63 characters like a key's name part); return it."""
    if not isinstance(value, str):
        raise SelectorError(field, f"label value must be a string, got {_type_name(value)}")
    if len(value) > _NAME_MAX:
        raise SelectorError(
            field, f"invalid label value {value!r}: must be at most {_NAME_MAX} characters"
        )
    if value and not _NAME_RE.fullmatch(value):
        raise SelectorError(field, f"invalid label value {value!r}: must be empty or {_NAME_RULE}")
    return value


def _check_requirement(key: str, operator: str, values: tuple[str, ...], path: str) -> None:
    """Validate one expression; ``path`` is its own path (``...matchExpressions[0]``)."""
    validate_label_key(key, f"{path}.key")
    if operator not in _OPERATOR_ORDER:
        raise SelectorError(
            f"{path}.operator",
            f"unknown operator {operator!r} (expected {', '.join(OPERATORS)})",
        )
    if operator in (IN, NOT_IN) and not values:
        raise SelectorError(f"{path}.values", f"must be non-empty for operator {operator}")
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        raise SelectorError(f"{path}.values", f"must be empty for operator {operator}")
    for i, value in enumerate(values):
        validate_label_value(value, f"{path}.values[{i}]")


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
        _check_requirement(self.key, self.operator, normalized, "requirement")
        object.__setattr__(self, "values", normalized)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (``NotIn`` holds for an absent key)."""
        if self.operator == IN:
            return self.key in labels and labels[self.key] in self.values
        if self.operator == NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return self.key in labels
        return self.key not in labels

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
class LabelSelector:
    """A ``metav1.LabelSelector``: ``match_labels`` AND every ``match_expressions`` entry.

    Stored canonically: labels in an immutable sorted map, expressions sorted and de-duplicated
    (order and repetition do not change an AND). The empty selector matches everything.
    """

    match_labels: Mapping[str, str] = field(default_factory=FrozenMap)
    match_expressions: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        labels = _str_map(self.match_labels, "labelSelector.matchLabels")
        for key, value in labels.items():
            validate_label_key(key, "labelSelector.matchLabels")
            validate_label_value(value, f"labelSelector.matchLabels.{key}")
        exprs = tuple(self.match_expressions)
        for i, expr in enumerate(exprs):
            if not isinstance(expr, Requirement):
                raise SelectorError(
                    f"labelSelector.matchExpressions[{i}]",
                    f"expected a Requirement, got {_type_name(expr)}",
                )
        object.__setattr__(self, "match_labels", FrozenMap(labels))
        object.__setattr__(
            self, "match_expressions", tuple(sorted(set(exprs), key=Requirement._sort_key))
        )

    @classmethod
    def from_dict(
        cls, d: Mapping[str, object] | None, field: str = "labelSelector"
    ) -> LabelSelector:
        """Build from the Kubernetes JSON shape; ``None`` or ``{}`` is the empty selector."""
        if d is None:
            return cls()
        body = _expect_mapping(d, field)
        _check_keys(body, ("matchLabels", "matchExpressions"), field)
        labels_path = f"{field}.matchLabels"
        labels = _str_map(body.get("matchLabels"), labels_path)
        for key, value in labels.items():
            validate_label_key(key, labels_path)
            validate_label_value(value, f"{labels_path}.{key}")
        exprs: list[Requirement] = []
        raw_exprs = body.get("matchExpressions")
        if raw_exprs is not None:
            for i, raw in enumerate(_expect_list(raw_exprs, f"{field}.matchExpressions")):
                exprs.append(_requirement_from_dict(raw, f"{field}.matchExpressions[{i}]"))
        return cls(FrozenMap(labels), tuple(exprs))

    @classmethod
    def parse(cls, text: str, field: str = "labelSelector") -> LabelSelector:
        """Parse ``kubectl -l`` syntax: ``app=demo,tier!=web,env in (a,b),env notin (c),gpu,!x``.

        ``=``/``==`` put the pair in ``match_labels`` (a second, different value for the same key
        becomes an ``In`` expression so both still have to hold); ``!=`` is ``NotIn`` with one
        value. Keys and values are validated. ``in``/``notin`` are keywords only in operator
        position, so a label may be called ``in``. Empty text is the empty selector.
        """
        if not isinstance(text, str):
            raise SelectorError(field, f"expected a string, got {_type_name(text)}")
        return _LabelParser(text, field).parse()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod (or container) with ``labels`` is selected."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(expr.matches(labels) for expr in self.match_expressions)

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


def _requirement_from_dict(raw: object, path: str) -> Requirement:
    body = _expect_mapping(raw, path)
    _check_keys(body, ("key", "operator", "values"), path)
    if "key" not in body:
        raise SelectorError(f"{path}.key", "required")
    if "operator" not in body:
        raise SelectorError(f"{path}.operator", "required")
    key = _expect_str(body["key"], f"{path}.key")
    operator = _expect_str(body["operator"], f"{path}.operator")
    raw_values = body.get("values")
    values: list[str] = []
    if raw_values is not None:
        for i, v in enumerate(_expect_list(raw_values, f"{path}.values")):
            values.append(_expect_str(v, f"{path}.values[{i}]"))
    _check_requirement(key, operator, tuple(values), path)
    return Requirement(key, operator, tuple(values))


# Token kinds of the kubectl selector syntax.
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
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.tokens = _tokenize(text)
        self.pos = 0

    def error(self, tok: _Token, expected: str) -> SelectorError:
        found = "end of input" if tok.kind == _EOF else repr(tok.text)
        return SelectorError(
            self.field,
            f"found {found} at position {tok.pos} in {self.text!r}, expected {expected}",
        )

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != _EOF:
            self.pos += 1
        return tok

    def parse(self) -> LabelSelector:
        labels: dict[str, str] = {}
        exprs: list[Requirement] = []
        if self.peek().kind == _EOF:
            return LabelSelector()
        while True:
            self.requirement(labels, exprs)
            tok = self.take()
            if tok.kind == _EOF:
                break
            if tok.kind != ",":
                raise self.error(tok, "',' or end of input")
        return LabelSelector(FrozenMap(labels), tuple(exprs))

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

    def requirement(self, labels: dict[str, str], exprs: list[Requirement]) -> None:
        if self.peek().kind == "!":
            self.take()
            exprs.append(Requirement(self.key(), DOES_NOT_EXIST))
            return
        key = self.key()
        tok = self.peek()
        if tok.kind in (",", _EOF):
            exprs.append(Requirement(key, EXISTS))
        elif tok.kind in ("=", "=="):
            self.take()
            self.end_of_value()
            value = self.value()
            if key not in labels:
                labels[key] = value
            elif labels[key] != value:
                exprs.append(Requirement(key, IN, (value,)))
        elif tok.kind == "!=":
            self.take()
            self.end_of_value()
            exprs.append(Requirement(key, NOT_IN, (self.value(),)))
        elif tok.kind == _IDENT and tok.text in ("in", "notin"):
            self.take()
            operator = IN if tok.text == "in" else NOT_IN
            values = self.value_list()
            if not values:
                raise SelectorError(
                    self.field, f"{key!r} {tok.text} (): the set needs at least one value"
                )
            exprs.append(Requirement(key, operator, tuple(values)))
        elif tok.kind in ("<", ">"):
            raise SelectorError(
                self.field,
                f"operator {tok.text!r} at position {tok.pos} is not supported "
                "(use =, ==, !=, in, notin, KEY or !KEY)",
            )
        else:
            raise self.error(tok, "'=', '==', '!=', 'in', 'notin', ',' or end of input")

    def end_of_value(self) -> None:
        """After an equality operator: a value, or nothing (empty value) before ',' or the end."""
        tok = self.peek()
        if tok.kind not in (_IDENT, ",", _EOF):
            raise self.error(tok, "a label value")

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


# --------------------------------------------------------------------------- field selectors

_FIELD_OPS: Final = ("=", "==", "!=")


def _escape_field_value(value: str) -> str:
    out = []
    for ch in value:
        if ch in "\\,=!":
            out.append("\\")
        out.append(ch)
    return "".join(out)


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
            if i + 1 >= len(raw) or raw[i + 1] not in "\\,=!":
                raise SelectorError(path, f"invalid escape sequence in field value {raw!r}")
            out.append(raw[i + 1])
            i += 2
            continue
        if ch in ",=!":
            raise SelectorError(path, f"unescaped {ch!r} in field value {raw!r} (write '\\{ch}')")
        out.append(ch)
        i += 1
    return "".join(out)


def _check_field_name(name: str, path: str) -> None:
    if name not in FIELD_SELECTOR_FIELDS:
        raise SelectorError(
            path,
            f"unknown field {name!r} (supported: {', '.join(FIELD_SELECTOR_FIELDS)})",
        )


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A pod field selector: every ``(field, op, value)`` term must hold.

    ``op`` is ``"="`` or ``"!="`` (``"=="`` is accepted and stored as ``"="``); terms are
    stored sorted and de-duplicated. A field that is missing from the tested mapping reads as
    ``""``, as in Kubernetes. The empty selector matches everything.
    """

    requirements: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        terms: set[tuple[str, str, str]] = set()
        for i, term in enumerate(self.requirements):
            path = f"fieldSelector[{i}]"
            if not isinstance(term, tuple) or len(term) != 3:
                raise SelectorError(path, "expected a (field, operator, value) tuple")
            name, op, value = term
            _check_field_name(_expect_str(name, path), path)
            if op not in _FIELD_OPS:
                raise SelectorError(path, f"unknown operator {op!r} (expected =, ==, !=)")
            terms.add((name, "=" if op == "==" else op, _expect_str(value, path)))
        object.__setattr__(self, "requirements", tuple(sorted(terms)))

    @classmethod
    def parse(cls, text: str, field: str = "fieldSelector") -> FieldSelector:
        """Parse ``kubectl --field-selector`` syntax: ``status.phase=Running,metadata.name!=x``.

        Whitespace around field names and values is dropped; ``\\,``, ``\\=``, ``\\!`` and
        ``\\\\`` escape those characters in values. Empty terms are skipped.
        """
        if not isinstance(text, str):
            raise SelectorError(field, f"expected a string, got {_type_name(text)}")
        terms: list[tuple[str, str, str]] = []
        for part in _split_unescaped(text, ","):
            if not part.strip():
                continue
            match = re.match(r"([^=!\\]*)(==|!=|=)(.*)\Z", part, re.DOTALL)
            if match is None:
                raise SelectorError(
                    field, f"invalid term {part.strip()!r} (expected FIELD=VALUE or FIELD!=VALUE)"
                )
            name = match.group(1).strip()
            _check_field_name(name, field)
            value = _unescape_field_value(match.group(3).strip(), field)
            terms.append((name, match.group(2), value))
        return cls(tuple(terms))

    @classmethod
    def from_dict(cls, d: object, field: str = "fieldSelector") -> FieldSelector:
        """Build from swoll's shape or a string.

        swoll stores field selectors in a ``metav1.LabelSelector`` whose ``matchLabels`` map a
        field path to a value (``{"matchLabels": {"status.phase": "Running"}}``). Also accepted:
        ``matchExpressions`` with ``In`` and exactly one value (``=``) or ``NotIn`` (one ``!=``
        per value), a plain selector string, and ``None`` (empty).
        """
        if d is None:
            return cls()
        if isinstance(d, str):
            return cls.parse(d, field)
        body = _expect_mapping(d, field)
        _check_keys(body, ("matchLabels", "matchExpressions"), field)
        terms: list[tuple[str, str, str]] = []
        labels_path = f"{field}.matchLabels"
        for name, value in _str_map(body.get("matchLabels"), labels_path).items():
            _check_field_name(name, labels_path)
            terms.append((name, "=", value))
        raw_exprs = body.get("matchExpressions")
        if raw_exprs is not None:
            for i, raw in enumerate(_expect_list(raw_exprs, f"{field}.matchExpressions")):
                terms.extend(_field_terms_from_expr(raw, f"{field}.matchExpressions[{i}]"))
        return cls(tuple(terms))

    @staticmethod
    def pod_fields(pod: Mapping[str, object]) -> dict[str, str]:
        """The four selectable fields of a pod given in Kubernetes JSON shape (missing -> "").

        The snake_case spelling of the Python Kubernetes client's ``to_dict()`` is read too.
        """

        def section(name: str) -> Mapping[str, object]:
            value = pod.get(name)
            return value if isinstance(value, Mapping) else {}

        def text(mapping: Mapping[str, object], *keys: str) -> str:
            for key in keys:
                value = mapping.get(key)
                if isinstance(value, str):
                    return value
            return ""

        metadata, spec, status = section("metadata"), section("spec"), section("status")
        return {
            "metadata.name": text(metadata, "name"),
            "metadata.namespace": text(metadata, "namespace"),
            "spec.nodeName": text(spec, "nodeName", "node_name"),
            "status.phase": text(status, "phase"),
        }

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether ``fields`` (field path -> value, e.g. from :meth:`pod_fields`) satisfy all."""
        for name, op, value in self.requirements:
            if (fields.get(name, "") == value) != (op == "="):
                return False
        return True

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
            f"{name}{op}{_escape_field_value(value)}" for name, op, value in self.requirements
        )


def _field_terms_from_expr(raw: object, path: str) -> list[tuple[str, str, str]]:
    body = _expect_mapping(raw, path)
    _check_keys(body, ("key", "operator", "values"), path)
    if "key" not in body:
        raise SelectorError(f"{path}.key", "required")
    if "operator" not in body:
        raise SelectorError(f"{path}.operator", "required")
    name = _expect_str(body["key"], f"{path}.key")
    _check_field_name(name, f"{path}.key")
    operator = _expect_str(body["operator"], f"{path}.operator")
    values = [
        _expect_str(v, f"{path}.values[{i}]")
        for i, v in enumerate(_expect_list(body.get("values") or [], f"{path}.values"))
    ]
    if operator == IN:
        if len(values) != 1:
            raise SelectorError(
                f"{path}.values",
                "a field selector can test In with exactly one value (fields have no OR)",
            )
        return [(name, "=", values[0])]
    if operator == NOT_IN:
        if not values:
            raise SelectorError(f"{path}.values", "must be non-empty for operator NotIn")
        return [(name, "!=", value) for value in values]
    if operator in (EXISTS, DOES_NOT_EXIST):
        raise SelectorError(
            f"{path}.operator", f"operator {operator} is not supported in a field selector"
        )
    raise SelectorError(f"{path}.operator", f"unknown operator {operator!r} (expected In or NotIn)")
