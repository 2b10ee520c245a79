"""The parts of a ``Trace`` (v1alpha1) as pydantic models: :class:`ObjectMeta`,
:class:`TraceSpec` and :class:`TraceStatus` (with :class:`TraceState`).

Manifest keys are camelCase (``labelSelector``, ``sampleRate``, ``jobID``, ``startTime``);
the Python names are snake_case and accepted on input too. All three are immutable values.
``spec`` forbids unknown keys; ``metadata`` and ``status`` ignore them, because the API server
and controllers add their own (``managedFields``, ``conditions``). swoll's status keys (``job``,
and its YAML spelling ``completeTime``) are read as well; ours win when both are present.

What swoll writes loads unchanged (docs/trace-spec.md): a Trace without ``metadata.name`` gets
a generated one (Kubernetes ``generateName`` semantics, :func:`generate_name`),
``metadata.namespace: ""`` means every namespace, ``duration: "0s"`` means no limit.

Syscall names are checked by an injectable resolver, passed as ``resolve=`` or in the
validation context ``{"resolve": fn}`` (by default ``syshub.syscalls.canonical_name``, imported
on first use). Pure Python; no privileges needed.
"""

from __future__ import annotations

import enum
import importlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final

from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from syshub.errors import TraceSpecError
from syshub.spec.base import FrozenSpecModel, validating_init
from syshub.spec.common import (
    FrozenMap,
    dns_name_problem,
    expect_list,
    expect_str,
    key_path,
    type_name,
    validate_label_key,
    validate_label_value,
)
from syshub.spec.duration import LimitDuration
from syshub.spec.limits import SAMPLE_RATE_MAX, validate_sample_rate
from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.spec.timestamp import Timestamp

__all__ = [
    "ALL_NAMESPACES",
    "API_GROUP",
    "API_VERSION",
    "DEFAULT_GENERATE_NAME",
    "KIND",
    "LIST_KINDS",
    "SUPPORTED_API_VERSIONS",
    "SWOLL_API_GROUP",
    "SWOLL_API_VERSION",
    "ObjectMeta",
    "Resolver",
    "TraceMetadata",
    "TraceSpec",
    "TraceState",
    "TraceStatus",
    "default_resolver",
    "generate_name",
]

#: The one version of both groups; ours and swoll's resources have the same shape.
VERSION: Final = "v1alpha1"
API_GROUP: Final = "syshub.io"
SWOLL_API_GROUP: Final = "tools.swoll.criticalstack.com"
API_VERSION: Final = f"{API_GROUP}/{VERSION}"
SWOLL_API_VERSION: Final = f"{SWOLL_API_GROUP}/{VERSION}"
SUPPORTED_API_VERSIONS: Final[tuple[str, ...]] = (API_VERSION, SWOLL_API_VERSION)
KIND: Final = "Trace"
#: Kinds of documents that hold several Traces under ``items``.
LIST_KINDS: Final[tuple[str, ...]] = ("TraceList", "List")

#: ``resolve(name) -> canonical name`` (no ``sys_`` prefix); raises ``ValueError`` whose
#: message explains (``unknown syscall 'opneat' (did you mean 'openat'?)``). It must accept
#: names with and without the ``sys_`` prefix.
Resolver = Callable[[str], str]


def default_resolver(name: str) -> str:
    """Resolve with ``syshub.syscalls.canonical_name`` (imported lazily: native table)."""
    module = importlib.import_module("syshub.syscalls")
    result = module.canonical_name(name)
    if not isinstance(result, str):
        raise TypeError(f"syshub.syscalls.canonical_name returned {type(result).__name__}")
    return result


def _name_list(what: str) -> BeforeValidator:
    """A list of non-empty strings (``what`` names them: ``"syscall names"``), de-duplicated
    with the first occurrence kept."""
    singular = what.removesuffix("s")

    def check(value: object) -> tuple[str, ...]:
        names: list[str] = []
        for i, item in enumerate(expect_list(value, "", TraceSpecError, what)):
            name = expect_str(item, f"[{i}]")
            if not name:
                raise TraceSpecError(f"[{i}]", f"{singular} must not be empty")
            if name not in names:
                names.append(name)
        return tuple(names)

    return BeforeValidator(check)


# --------------------------------------------------------------------------- metadata

_Labels = Annotated[FrozenMap, Field(default_factory=FrozenMap)]

#: ``metadata.namespace`` of a Trace that selects pods of every namespace (swoll's meaning).
ALL_NAMESPACES: Final = ""
#: The ``generateName`` prefix used for a Trace that has neither ``name`` nor ``generateName``.
DEFAULT_GENERATE_NAME: Final = "trace-"
#: Kubernetes' generated-name alphabet (``k8s.io/apimachinery/pkg/util/rand``): lowercase
#: consonants and digits without look-alikes, so a generated name never spells words.
_NAME_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_NAME_SUFFIX: Final = 5
#: Longest prefix kept: the API server cuts ``generateName`` so prefix + suffix <= 63.
_MAX_PREFIX: Final = 63 - _NAME_SUFFIX


def generate_name(prefix: str = DEFAULT_GENERATE_NAME) -> str:
    """A name as the API server makes one from ``metadata.generateName``: the prefix (cut to
    58 characters) followed by 5 random characters of Kubernetes' alphabet."""
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(_NAME_SUFFIX))
    return prefix[:_MAX_PREFIX] + suffix


class ObjectMeta(FrozenSpecModel):
    """The parts of ``metadata`` syshub reads and writes back; others are dropped on load.

    ``name`` must be a DNS subdomain (as for every custom resource). Without a name one is
    generated (:func:`generate_name`) from ``generate_name`` (``generateName``), or from
    ``"trace-"`` when that is empty too, as the API server does for ``generateName``; the
    prefix is kept in ``generate_name``. ``namespace`` is a DNS label; missing means
    ``default`` and empty (:data:`ALL_NAMESPACES`) every namespace, as in swoll. Labels and
    annotation keys are validated like the API server does.
    """

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"description": "standard object metadata"}
    )
    field_path: ClassVar[str] = "metadata"
    always_written: ClassVar[frozenset[str]] = frozenset({"name", "namespace"})

    name: StrictStr = ""  # never stays empty: _prepare generates one
    generate_name: StrictStr = Field("", alias="generateName")
    namespace: StrictStr = "default"
    labels: _Labels
    annotations: _Labels
    uid: StrictStr = ""
    resource_version: StrictStr = Field("", alias="resourceVersion")
    generation: Annotated[StrictInt | None, WithJsonSchema({"type": "integer"})] = None
    creation_timestamp: Timestamp = Field(None, alias="creationTimestamp")
    finalizers: tuple[StrictStr, ...] = ()

    if TYPE_CHECKING:  # the Python names; manifests use from_manifest() (camelCase)

        def __init__(
            self,
            *,
            name: str = "",
            generate_name: str = "",
            namespace: str = "default",
            labels: Mapping[str, str] = ...,
            annotations: Mapping[str, str] = ...,
            uid: str = "",
            resource_version: str = "",
            generation: int | None = None,
            creation_timestamp: datetime | str | None = None,
            finalizers: Iterable[str] = (),
        ) -> None: ...

    @classmethod
    def _prepare(cls, body: dict[str, Any]) -> dict[str, Any]:
        """Generate the name of a Trace that has none (``generateName`` semantics)."""
        if body.get("name", "") != "":
            return body
        prefix = body.get("generateName", body.get("generate_name", ""))
        if not isinstance(prefix, str):
            raise TraceSpecError(".generateName", f"expected a string, got {type_name(prefix)}")
        name = generate_name(prefix or DEFAULT_GENERATE_NAME)
        problem = dns_name_problem(name, label=False)
        if problem is not None:
            raise TraceSpecError(".generateName", f"invalid prefix {prefix!r}: {problem}")
        return {**body, "name": name}

    @field_validator("name", "namespace")
    @classmethod
    def _check_dns_name(cls, value: str, info: ValidationInfo) -> str:
        """``name``: a DNS subdomain; ``namespace``: a DNS label or empty (every namespace)."""
        is_namespace = info.field_name == "namespace"
        if not value:
            if is_namespace:
                return ALL_NAMESPACES
            raise TraceSpecError("", "required (a non-empty string)")
        problem = dns_name_problem(value, label=is_namespace)
        if problem is not None:
            raise TraceSpecError("", f"invalid {info.field_name} {value!r}: {problem}")
        return value

    @field_validator("labels", "annotations")
    @classmethod
    def _check_label_keys(cls, labels: FrozenMap, info: ValidationInfo) -> FrozenMap:
        """Keys of both as label keys; label values as label values (annotations: any text)."""
        for key, value in labels.items():
            validate_label_key(key, "", TraceSpecError)
            if info.field_name == "labels":
                validate_label_value(value, key_path(key), TraceSpecError)
        return labels


#: The name this type had before it became a pydantic model.
TraceMetadata = ObjectMeta


# --------------------------------------------------------------------------- spec


def _sample_rate(value: object) -> int:
    return validate_sample_rate(value, "")


class TraceSpec(FrozenSpecModel):
    """What to trace. Validation normalizes:

    * ``syscalls``: non-empty; each resolved (see the module doc) to its canonical name without
      ``sys_``; duplicates removed, first occurrence kept.
    * ``label_selector`` / ``field_selector``: selector values (the manifest shapes, and for the
      field selector also ``kubectl --field-selector`` text, are read).
    * ``host_selector``: container names (non-empty strings), duplicates removed.
    * ``sample_rate``: 1-in-N delivery in ``0..SAMPLE_RATE_MAX``; ``0`` is stored as ``1``.
    * ``duration``: seconds (> 0) after which the trace completes, or ``None`` for no limit;
      Go duration text (``"1h30m"``) or seconds in, Go text out. Zero (``"0s"``, what swoll's
      Go types write for an unset duration) means no limit too.

    :meth:`to_dict` writes ``sampleRate`` only when it was set (given, or not 1), as swoll's
    ``omitempty`` does.
    """

    model_config = ConfigDict(
        json_schema_extra={"description": "what to trace: syscalls, pods, containers, rate"}
    )
    field_path: ClassVar[str] = "spec"
    always_written: ClassVar[frozenset[str]] = frozenset({"syscalls", "sampleRate"})

    syscalls: Annotated[tuple[str, ...], _name_list("syscall names")] = Field(
        description="syscall names, with or without the sys_ prefix"
    )
    label_selector: LabelSelector = Field(default_factory=LabelSelector, alias="labelSelector")
    field_selector: FieldSelector = Field(default_factory=FieldSelector, alias="fieldSelector")
    host_selector: Annotated[tuple[str, ...], _name_list("container names")] = Field(
        (), alias="hostSelector", description="container names to restrict the trace to"
    )
    sample_rate: Annotated[int, BeforeValidator(_sample_rate)] = Field(
        1,
        alias="sampleRate",
        description="deliver 1 in N events (0 and 1: every event)",
        json_schema_extra={"minimum": 0, "maximum": SAMPLE_RATE_MAX},
    )
    duration: LimitDuration = Field(
        None, description="complete the trace after this long (0s or absent: no limit)"
    )

    @validating_init
    def __init__(self, /, resolve: Resolver | None = None, **data: Any) -> None:
        self._validate_into(data, {"resolve": resolve})

    @classmethod
    def from_dict(
        cls, d: object, resolve: Resolver | None = None, field: str = "spec"
    ) -> TraceSpec:
        """Build from a manifest's ``spec`` (camelCase keys); errors are under ``field``."""
        return cls.from_manifest(d, {"resolve": resolve}, field)

    def to_dict(self) -> dict[str, Any]:
        """The manifest ``spec``; ``sampleRate`` only when set (given, or not 1)."""
        out = super().to_dict()
        if self.sample_rate == 1 and "sample_rate" not in self.model_fields_set:
            out.pop("sampleRate", None)
        return out

    @field_validator("syscalls")
    @classmethod
    def _resolve_syscalls(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        context = info.context if isinstance(info.context, dict) else {}
        resolver: Resolver = context.get("resolve") or default_resolver
        canonical: list[str] = []
        for i, name in enumerate(names):
            try:
                resolved = resolver(name)
            except ValueError as exc:
                raise TraceSpecError(f"[{i}]", str(exc)) from None
            if resolved not in canonical:
                canonical.append(resolved)
        if not canonical:
            raise TraceSpecError("", "must list at least one syscall")
        return tuple(canonical)


# --------------------------------------------------------------------------- status


class TraceState(enum.Enum):
    """``status.state``; swoll's empty string reads as :attr:`PENDING`."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"

    @classmethod
    def parse(cls, value: object, field: str = "status.state") -> TraceState:
        if value is None or value == "":
            return cls.PENDING
        if isinstance(value, TraceState):
            return value
        text = expect_str(value, field)
        for state in cls:
            if state.value == text:
                return state
        expected = ", ".join(s.value for s in cls)
        raise TraceSpecError(field, f"unknown state {text!r} (expected {expected} or empty)")

    @property
    def finished(self) -> bool:
        return self in (TraceState.COMPLETE, TraceState.FAILED)


def _state(value: object) -> TraceState:
    return TraceState.parse(value, "")


_State = Annotated[
    TraceState,
    BeforeValidator(_state),
    WithJsonSchema({"type": "string", "enum": ["", *(s.value for s in TraceState)]}),
]


class TraceStatus(FrozenSpecModel):
    """An immutable snapshot of ``status``. Times are aware UTC (naive input is taken as UTC).

    Reads ours (``jobID``, ``completionTime``) and swoll's (``job``, ``completionTime``, and
    ``completeTime``, the YAML tag of swoll's Go type) keys; unknown keys are ignored
    (controllers own status). :meth:`to_dict` writes the keys of the trace's API group.
    """

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"description": "written by the agents: job and state"}
    )
    field_path: ClassVar[str] = "status"
    always_written: ClassVar[frozenset[str]] = frozenset({"state"})

    job_id: StrictStr = Field(
        "", validation_alias=AliasChoices("jobID", "job"), serialization_alias="jobID"
    )
    state: _State = TraceState.PENDING
    start_time: Timestamp = Field(
        None, validation_alias=AliasChoices("startTime"), serialization_alias="startTime"
    )
    completion_time: Timestamp = Field(
        None,
        validation_alias=AliasChoices("completionTime", "completeTime"),
        serialization_alias="completionTime",
    )

    if TYPE_CHECKING:  # the Python names; manifests use from_dict() (either group's keys)

        def __init__(
            self,
            *,
            job_id: str = "",
            state: TraceState | str = TraceState.PENDING,
            start_time: datetime | str | None = None,
            completion_time: datetime | str | None = None,
        ) -> None: ...

    @classmethod
    def from_dict(cls, d: object, field: str = "status") -> TraceStatus:
        """Build from a manifest's ``status`` (``None``: the default pending status)."""
        return cls() if d is None else cls.from_manifest(d, field=field)

    def to_dict(self, api_version: str = API_VERSION) -> dict[str, Any]:
        """The ``status`` with the key names of ``api_version``'s group, as its API server
        stores them (swoll's JSON tags: ``job``, ``completionTime``; ours: ``jobID``,
        ``completionTime``); unset values are omitted."""
        out = super().to_dict()
        if api_version == SWOLL_API_VERSION:
            out = {("job" if k == "jobID" else k): v for k, v in out.items()}
        return out
