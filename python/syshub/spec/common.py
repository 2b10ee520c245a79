"""Checks shared by the Trace model and the selectors: value types as YAML/JSON names them,
Kubernetes names (DNS labels and subdomains, label keys and values) and an immutable map.

Every check raises the error class it is given (:class:`~syshub.errors.TraceSpecError` or its
:class:`~syshub.errors.SelectorError` subclass) with ``field`` naming the offending field. Inside
pydantic validators the field is *relative* to the value being validated (``""`` for the value
itself, ``".matchLabels"`` or ``"[2]"`` for a part); :mod:`syshub.spec.base` joins it to the
absolute path. Pure Python; no privileges needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from syshub.errors import SelectorError, TraceSpecError

__all__ = [
    "FrozenMap",
    "check_keys",
    "dns_name_problem",
    "expect_list",
    "expect_mapping",
    "expect_str",
    "join_path",
    "key_path",
    "short_repr",
    "str_map",
    "type_name",
    "validate_label_key",
    "validate_label_value",
]

ErrorClass = type[TraceSpecError]

_NAME_MAX: Final = 63
_SUBDOMAIN_MAX: Final = 253
_LABEL_NAME_RE: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN_RE: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_LABEL_NAME_RULE: Final = "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
_REPR_MAX: Final = 60
_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z0-9_][-A-Za-z0-9_./]*")


# --------------------------------------------------------------------------- value types


def type_name(obj: object) -> str:
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


def short_repr(obj: object) -> str:
    """``repr(obj)``, cut to a readable length for one-line messages."""
    text = repr(obj)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def join_path(base: str, rel: str) -> str:
    """``base`` plus a relative path (``""``, ``".key"``, ``"[2]"`` or a bare ``"key"``)."""
    if not rel:
        return base
    if not base:
        return rel.removeprefix(".")
    if rel.startswith((".", "[")):
        return base + rel
    return f"{base}.{rel}"


def key_path(key: str) -> str:
    """The relative path of a mapping key: ``.key``, or ``['odd key']`` when the key is not a
    plain name (so a path stays one readable line)."""
    return f".{key}" if _PLAIN_KEY_RE.fullmatch(key) else f"[{key!r}]"


def expect_str(obj: object, path: str, error: ErrorClass = TraceSpecError) -> str:
    if not isinstance(obj, str):
        hint = " (quote it in YAML)" if isinstance(obj, bool | int | float) else ""
        raise error(path, f"expected a string, got {type_name(obj)} {short_repr(obj)}{hint}")
    return obj


def expect_mapping(
    obj: object, path: str, error: ErrorClass = TraceSpecError
) -> Mapping[str, object]:
    if not isinstance(obj, Mapping):
        raise error(path, f"expected a mapping, got {type_name(obj)}")
    for key in obj:
        if not isinstance(key, str):
            raise error(path, f"keys must be strings, got {type_name(key)} {short_repr(key)}")
    return obj


def expect_list(
    obj: object, path: str, error: ErrorClass = TraceSpecError, what: str = ""
) -> list[object] | tuple[object, ...]:
    """A list (or tuple); ``what`` names the items in the message (``"syscall names"``)."""
    if not isinstance(obj, list | tuple):
        of = f" of {what}" if what else ""
        got = f"{type_name(obj)} {short_repr(obj)}" if isinstance(obj, str) else type_name(obj)
        raise error(path, f"expected a list{of}, got {got}")
    return obj


def check_keys(
    d: Mapping[str, object], allowed: tuple[str, ...], path: str, error: ErrorClass
) -> None:
    for key in d:
        if key not in allowed:
            raise error(
                join_path(path, key_path(key)), f"unknown field (expected {', '.join(allowed)})"
            )


def str_map(obj: object, path: str, error: ErrorClass = TraceSpecError) -> dict[str, str]:
    """A ``str -> str`` mapping (``None`` is empty); the error names the key whose value is not
    a string."""
    if obj is None:
        return {}
    d = expect_mapping(obj, path, error)
    return {k: expect_str(v, join_path(path, key_path(k)), error) for k, v in d.items()}


# --------------------------------------------------------------------------- Kubernetes names


def dns_name_problem(text: str, *, label: bool) -> str | None:
    """Why ``text`` is not a DNS label (``label=True``: namespaces) or subdomain (object names,
    label key prefixes), or ``None`` when it is one."""
    if label:
        if len(text) > _NAME_MAX or not _DNS_LABEL_RE.fullmatch(text):
            return (
                "must be a DNS label (a-z, 0-9 and '-', alphanumeric at both ends, "
                f"at most {_NAME_MAX} characters)"
            )
        return None
    if len(text) > _SUBDOMAIN_MAX or not _DNS_SUBDOMAIN_RE.fullmatch(text):
        return (
            "must be a lowercase DNS subdomain (a-z, 0-9, '-' and '.', alphanumeric at both ends, "
            f"at most {_SUBDOMAIN_MAX} characters)"
        )
    return None


def validate_label_key(key: str, field: str = "labels", error: ErrorClass = SelectorError) -> str:
    """Check a label key (``[prefix/]name``) like the API server does; return it unchanged.

    ``prefix`` is an optional lowercase DNS subdomain of at most 253 characters; ``name`` is 1-63
    characters of ``[A-Za-z0-9._-]`` with an alphanumeric at both ends.
    """
    if not isinstance(key, str):
        raise error(field, f"label key must be a string, got {type_name(key)}")
    if key.count("/") > 1:
        raise error(field, f"invalid label key {key!r}: at most one '/' is allowed")
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise error(field, f"invalid label key {key!r}: prefix before '/' is empty")
        problem = dns_name_problem(prefix, label=False)
        if problem is not None:
            raise error(field, f"invalid label key {key!r}: prefix {prefix!r} {problem}")
    if not name:
        raise error(field, f"invalid label key {key!r}: name part must not be empty")
    if len(name) > _NAME_MAX:
        raise error(
            field, f"invalid label key {key!r}: name part must be at most {_NAME_MAX} characters"
        )
    if not _LABEL_NAME_RE.fullmatch(name):
        raise error(field, f"invalid label key {key!r}: name part must be {_LABEL_NAME_RULE}")
    return key


def validate_label_value(
    value: str, field: str = "labels", error: ErrorClass = SelectorError
) -> str:
    """Check a label value (empty, or 1-63 characters like a key's name part); return it."""
    if not isinstance(value, str):
        raise error(field, f"label value must be a string, got {type_name(value)}")
    if len(value) > _NAME_MAX:
        raise error(field, f"invalid label value {value!r}: must be at most {_NAME_MAX} characters")
    if value and not _LABEL_NAME_RE.fullmatch(value):
        raise error(field, f"invalid label value {value!r}: must be empty or {_LABEL_NAME_RULE}")
    return value


# --------------------------------------------------------------------------- FrozenMap


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (labels, annotations).

    Iterates in sorted key order so that equal maps print and serialize identically. In a
    pydantic model it validates as ``dict[str, str]`` (strict strings) and serializes as a dict.
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

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        strict_str = core_schema.str_schema(strict=True)
        as_dict = core_schema.dict_schema(strict_str, strict_str)
        return core_schema.no_info_after_validator_function(
            cls,
            as_dict,
            serialization=core_schema.plain_serializer_function_ser_schema(dict),
        )
