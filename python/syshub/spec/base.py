"""pydantic base models of the spec, and validation errors as one-line ``TraceSpecError``.

Conventions every spec model shares:

* manifest keys are camelCase aliases; Python names are accepted too (``populate_by_name``);
* ``null`` means absent (Kubernetes semantics), so a null field takes its default;
* a :class:`pydantic.ValidationError` never reaches a user: :func:`spec_error` turns its first
  error into :class:`~syshub.errors.TraceSpecError` (or the ``SelectorError`` a validator
  raised) whose ``field`` is the path of the offending field (``spec.syscalls[2]``,
  ``items[1].spec.labelSelector.matchExpressions[0].operator``). A validator raising
  ``TraceSpecError`` gives a field path *relative* to the value it validates (``""``,
  ``".matchLabels"``, ``"[2]"``), which is joined to pydantic's location.

Pure Python; no privileges needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from syshub.errors import TraceSpecError
from syshub.spec.common import join_path, key_path, short_repr, type_name

__all__ = ["FrozenSpecModel", "SpecModel", "spec_error", "validating_init"]

_Init = TypeVar("_Init", bound=Callable[..., None])

_EMPTY: tuple[object, ...] = (None, "", [], {})
_MAPPING_ERRORS = frozenset({"dict_type", "model_type", "model_attributes_type", "mapping_type"})
_LIST_ERRORS = frozenset({"list_type", "tuple_type", "iterable_type", "set_type"})
_INT_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float"})


def _manifest_name(name: str, f: FieldInfo) -> str:
    return f.serialization_alias or f.alias or name


def _field_names(model: type[BaseModel]) -> list[str]:
    """The manifest spelling of a model's fields."""
    return [_manifest_name(name, f) for name, f in model.model_fields.items()]


def _walk(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel] | None]:
    """The manifest path of ``loc`` (Python field names become their camelCase aliases) and the
    model class ``loc`` ends in (``None`` when it leaves the models)."""
    path = ""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            path = join_path(path, f"[{part}]")
            model = None
            continue
        found = None
        if model is not None:
            for name, f in model.model_fields.items():
                if part in (name, f.alias, f.serialization_alias):
                    found = (_manifest_name(name, f), f.annotation)
                    break
        if found is None:
            path, model = join_path(path, key_path(part)), None
            continue
        path = join_path(path, f".{found[0]}")
        nested = found[1]
        model = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
    return path, model


def _message(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    got = f"{type_name(value)} {short_repr(value)}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        model = _walk(root, error["loc"][:-1])[1]
        known = f" (expected one of {', '.join(_field_names(model))})" if model else ""
        return f"unknown field{known}"
    if kind == "string_type":
        hint = " (quote it in YAML)" if isinstance(value, bool | int | float) else ""
        return f"expected a string, got {got}{hint}"
    if kind in _INT_ERRORS:
        return f"expected an integer, got {got}"
    if kind in _LIST_ERRORS:
        return f"expected a list, got {type_name(value)}"
    if kind in _MAPPING_ERRORS:
        return f"expected a mapping, got {type_name(value)}"
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def spec_error(exc: ValidationError, base: str, root: type[BaseModel]) -> TraceSpecError:
    """The first error of ``exc`` as a ``TraceSpecError``; ``base`` is the path of the validated
    value (``"spec"`` for a standalone spec, ``""`` for a whole Trace, which reads as
    ``document`` when the document itself is wrong)."""
    error = exc.errors(include_url=False)[0]
    path = join_path(base, _walk(root, error["loc"])[0])
    inner = error.get("ctx", {}).get("error")
    if isinstance(inner, TraceSpecError):
        return type(inner)(join_path(path, inner.field) or "document", inner.reason)
    if isinstance(inner, ValueError):
        return TraceSpecError(path or "document", str(inner))
    return TraceSpecError(path or "document", _message(error, root))


def validating_init(init: _Init) -> _Init:
    """Mark an ``__init__`` that only validates its keywords (into ``self``) as pydantic's own:
    pydantic then validates nested data of the model directly instead of calling it (which
    would lose the validation context and the location of errors)."""
    init.__pydantic_base_init__ = True  # type: ignore[attr-defined]
    return init


class SpecModel(BaseModel):
    """Base of the spec models (see the module doc for the shared conventions)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: The model's own field path when it is validated on its own (``"spec"``).
    field_path: ClassVar[str] = ""
    #: Manifest keys :meth:`to_dict` writes even when empty.
    always_written: ClassVar[frozenset[str]] = frozenset()

    @validating_init
    def __init__(self, /, **data: Any) -> None:
        self._validate_into(data, None)

    def _validate_into(self, data: dict[str, Any], context: dict[str, Any] | None) -> None:
        try:
            self.__pydantic_validator__.validate_python(data, self_instance=self, context=context)
        except ValidationError as exc:
            raise spec_error(exc, self.field_path, type(self)) from None

    @classmethod
    def from_manifest(
        cls, data: object, context: dict[str, Any] | None = None, field: str | None = None
    ) -> Self:
        """Validate manifest data; errors are ``TraceSpecError`` under ``field`` (default: the
        model's own path)."""
        try:
            return cls.model_validate(data, context=context)
        except ValidationError as exc:
            raise spec_error(exc, cls.field_path if field is None else field, cls) from None

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        for key in data:
            if not isinstance(key, str):
                raise TraceSpecError("", f"keys must be strings, got {type_name(key)} {key!r}")
        return cls._prepare({k: v for k, v in data.items() if v is not None})

    @classmethod
    def _prepare(cls, body: dict[str, Any]) -> dict[str, Any]:
        """Hook: adjust a manifest mapping (nulls already dropped) before validation."""
        return body

    def to_dict(self) -> dict[str, Any]:
        """The manifest shape (camelCase); empty values are left out except
        :attr:`always_written` keys."""
        data = self.model_dump(mode="json", by_alias=True)
        return {k: v for k, v in data.items() if k in self.always_written or v not in _EMPTY}


class FrozenSpecModel(SpecModel):
    """An immutable, hashable spec model; assignment raises ``AttributeError``."""

    model_config = ConfigDict(frozen=True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot delete {name!r})")
