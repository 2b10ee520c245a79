"""The ``Trace`` resource (v1alpha1): what to trace, where, and how it is going.

A Trace names syscalls and picks pods/containers with label, field and host selectors. Two API
groups are read: ours (``syshub.io/v1alpha1``) and swoll's
(``tools.swoll.criticalstack.com/v1alpha1``), whose manifests load unchanged. Loading validates
everything and every error is a :class:`~syshub.errors.TraceSpecError` whose ``field`` is the
path of the offending field (``spec.syscalls[2]``, ``spec.labelSelector.matchLabels``).

Metadata and spec are immutable values. The status is owned by the hub and changes while a job
runs: a :class:`Trace` holds an immutable :class:`TraceStatus` snapshot and replaces it under a
lock (:meth:`Trace.update_status`, :meth:`Trace.mark_running`, ...), so readers on other threads
always see a consistent status. Syscall names are checked by an injectable resolver (by default
``syshub.syscalls.canonical_name``, imported on first use), so this module needs no native code.
Pure Python; no privileges needed.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import yaml

from syshub.errors import SelectorError, TraceSpecError
from syshub.spec.selectors import (
    FieldSelector,
    FrozenMap,
    LabelSelector,
    validate_label_key,
    validate_label_value,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "KIND",
    "SUPPORTED_API_VERSIONS",
    "SWOLL_API_GROUP",
    "SWOLL_API_VERSION",
    "Resolver",
    "Trace",
    "TraceMetadata",
    "TraceSpec",
    "TraceState",
    "TraceStatus",
    "default_resolver",
    "format_duration",
    "load_traces",
    "new_job_id",
    "parse_duration",
]

API_GROUP: Final = "syshub.io"
API_VERSION: Final = "syshub.io/v1alpha1"
SWOLL_API_GROUP: Final = "tools.swoll.criticalstack.com"
SWOLL_API_VERSION: Final = "tools.swoll.criticalstack.com/v1alpha1"
SUPPORTED_API_VERSIONS: Final[tuple[str, ...]] = (API_VERSION, SWOLL_API_VERSION)
KIND: Final = "Trace"
LIST_KINDS: Final[tuple[str, ...]] = ("TraceList", "List")

#: Largest accepted ``sampleRate`` (the kernel side keeps rates in 32 bits).
MAX_SAMPLE_RATE: Final = 2**32 - 1
#: Largest accepted duration, as Go's ``time.Duration`` (int64 nanoseconds) can hold.
MAX_DURATION_NS: Final = 2**63 - 1

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


# --------------------------------------------------------------------------- small parsers


def _type_name(obj: object) -> str:
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


def _mapping(obj: object, path: str) -> Mapping[str, object]:
    if not isinstance(obj, Mapping):
        raise TraceSpecError(path, f"expected a mapping, got {_type_name(obj)}")
    for key in obj:
        if not isinstance(key, str):
            raise TraceSpecError(path, f"keys must be strings, got {_type_name(key)} {key!r}")
    return obj


def _string(obj: object, path: str) -> str:
    if not isinstance(obj, str):
        hint = " (quote it in YAML)" if isinstance(obj, bool | int | float) else ""
        raise TraceSpecError(path, f"expected a string, got {_type_name(obj)} {obj!r}{hint}")
    return obj


def _string_list(obj: object, path: str, what: str) -> list[str]:
    if obj is None:
        return []
    if not isinstance(obj, list | tuple):
        raise TraceSpecError(path, f"expected a list of {what}, got {_type_name(obj)} {obj!r}")
    return [_string(item, f"{path}[{i}]") for i, item in enumerate(obj)]


def _check_known(d: Mapping[str, object], allowed: Sequence[str], path: str) -> None:
    for key in d:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise TraceSpecError(where, f"unknown field (expected one of {', '.join(allowed)})")


_DURATION_UNITS_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, as Go prints it
    "\u03bcs": 1_000,  # Greek mu, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART_RE: Final = re.compile(rf"({_NUMBER})(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_DURATION_RE: Final = re.compile(rf"[+-]?(?:{_NUMBER}(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_BARE_NUMBER_RE: Final = re.compile(rf"[+-]?{_NUMBER}")
_DURATION_HELP: Final = "expected e.g. '90s', '1m30s', '1h', '500ms' or a number of seconds"


def _duration_ns(value: object, path: str) -> int:
    """Nanoseconds for a duration in any accepted spelling; must be positive."""
    if isinstance(value, bool):
        raise TraceSpecError(path, f"expected a duration, got boolean {value!r}")
    if isinstance(value, timedelta):
        ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise TraceSpecError(path, f"invalid duration {value!r} ({_DURATION_HELP})")
        ns = round(Decimal(value) * 1_000_000_000)
    elif isinstance(value, str):
        text = value.strip()
        if _BARE_NUMBER_RE.fullmatch(text):
            ns = round(Decimal(text) * 1_000_000_000)
        elif _DURATION_RE.fullmatch(text):
            total = Decimal(0)
            for number, unit in _DURATION_PART_RE.findall(text):
                total += Decimal(number) * _DURATION_UNITS_NS[unit]
            ns = round(-total if text.startswith("-") else total)
        else:
            raise TraceSpecError(path, f"invalid duration {value!r} ({_DURATION_HELP})")
    else:
        raise TraceSpecError(path, f"expected a duration, got {_type_name(value)}")
    if ns <= 0:
        raise TraceSpecError(path, f"must be positive, got {value!r}")
    if ns > MAX_DURATION_NS:
        raise TraceSpecError(path, f"too long: {value!r} (at most about 292 years)")
    return ns


def parse_duration(value: object, field: str = "spec.duration") -> float:
    """Seconds for a Go/``metav1.Duration`` string (``"1m30s"``, ``"1.5h"``, ``"300us"``,
    ``"µs"``/``"ns"`` too), a bare number of seconds (``90``, ``"90"``) or a ``timedelta``.

    The result is rounded to whole nanoseconds. Zero, negative, non-finite or malformed values
    raise :class:`TraceSpecError` naming ``field``.
    """
    return _duration_ns(value, field) / 1_000_000_000


def _format_fraction(whole: int, frac: int, digits: int) -> str:
    """``whole`` plus ``frac`` / 10**digits, with trailing zeros (and a bare '.') removed."""
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` spelling: ``"5m0s"``, ``"1h30m0s"``, ``"1.5s"``,
    ``"500ms"``, ``"300ns"``; what ``metav1.Duration`` serializes to."""
    ns = round(Decimal(seconds) * 1_000_000_000)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_format_fraction(ns // 1_000, ns % 1_000, 3)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_format_fraction(ns // 1_000_000, ns % 1_000_000, 6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    secs = _format_fraction(rest // 1_000_000_000, rest % 1_000_000_000, 9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{secs}s"


_FRACTION_RE: Final = re.compile(r"(\.\d{6})\d+")


def _parse_time(value: object, path: str) -> datetime | None:
    """RFC 3339 timestamp (or a datetime, as YAML parses unquoted ones) -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = _FRACTION_RE.sub(r"\1", value.strip())  # Go may write nanoseconds
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise TraceSpecError(
                path, f"invalid RFC 3339 timestamp {value!r} (e.g. '2021-01-02T03:04:05Z')"
            ) from None
    else:
        raise TraceSpecError(path, f"expected an RFC 3339 timestamp, got {_type_name(value)}")
    return _as_utc(parsed)


def _as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _format_time(moment: datetime) -> str:
    moment = _as_utc(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


_DNS_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN_RE: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)


def _reprefix(exc: TraceSpecError, prefix: str) -> TraceSpecError:
    """The same error (same class) with ``prefix`` put in front of its field path."""
    cls = SelectorError if isinstance(exc, SelectorError) else TraceSpecError
    return cls(f"{prefix}{exc.field}", exc.reason)


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True, slots=True)
class TraceMetadata:
    """The parts of ``metadata`` syshub reads and writes back; others are dropped on load.

    ``name`` must be a DNS subdomain (as for every custom resource) and ``namespace`` a DNS
    label; labels and annotation keys are validated like the API server does.
    """

    name: str
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=FrozenMap)
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    uid: str = ""
    resource_version: str = ""
    generation: int | None = None
    creation_timestamp: datetime | None = None
    finalizers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TraceSpecError("metadata.name", "required (a non-empty string)")
        if len(self.name) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(self.name):
            raise TraceSpecError(
                "metadata.name",
                f"invalid name {self.name!r}: must be a lowercase DNS subdomain (a-z, 0-9, '-' "
                "and '.', alphanumeric at both ends, at most 253 characters)",
            )
        if not isinstance(self.namespace, str) or not self.namespace:
            raise TraceSpecError("metadata.namespace", "must be a non-empty string")
        if len(self.namespace) > 63 or not _DNS_LABEL_RE.fullmatch(self.namespace):
            raise TraceSpecError(
                "metadata.namespace",
                f"invalid namespace {self.namespace!r}: must be a DNS label (a-z, 0-9 and '-', "
                "alphanumeric at both ends, at most 63 characters)",
            )
        try:
            for key, value in self.labels.items():
                validate_label_key(key, "metadata.labels")
                validate_label_value(value, f"metadata.labels.{key}")
            for key in self.annotations:
                validate_label_key(key, "metadata.annotations")
        except SelectorError as exc:  # a label problem is a spec problem, not a selector one
            raise TraceSpecError(exc.field, exc.reason) from None
        for key, value in self.annotations.items():
            _string(value, f"metadata.annotations.{key}")
        if self.generation is not None and (
            isinstance(self.generation, bool) or not isinstance(self.generation, int)
        ):
            raise TraceSpecError("metadata.generation", "expected an integer")
        if self.creation_timestamp is not None:
            object.__setattr__(self, "creation_timestamp", _as_utc(self.creation_timestamp))
        object.__setattr__(self, "labels", FrozenMap(self.labels))
        object.__setattr__(self, "annotations", FrozenMap(self.annotations))
        object.__setattr__(self, "finalizers", tuple(self.finalizers))

    @classmethod
    def from_dict(cls, d: object) -> TraceMetadata:
        """Build from a manifest's ``metadata``; server-set fields not listed above are dropped."""
        body = _mapping(d, "metadata")
        if body.get("name") in (None, ""):
            raise TraceSpecError("metadata.name", "required")
        generation = body.get("generation")
        if generation is not None and (
            isinstance(generation, bool) or not isinstance(generation, int)
        ):
            raise TraceSpecError("metadata.generation", f"expected an integer, got {generation!r}")
        namespace = body.get("namespace")

        def str_map(key: str) -> dict[str, str]:
            raw = body.get(key)
            if raw is None:
                return {}
            items = _mapping(raw, f"metadata.{key}").items()
            return {k: _string(v, f"metadata.{key}.{k}") for k, v in items}

        return cls(
            name=_string(body["name"], "metadata.name"),
            namespace="default"
            if namespace in (None, "")
            else _string(namespace, "metadata.namespace"),
            labels=str_map("labels"),
            annotations=str_map("annotations"),
            uid=_string(body.get("uid") or "", "metadata.uid"),
            resource_version=_string(body.get("resourceVersion") or "", "metadata.resourceVersion"),
            generation=generation,
            creation_timestamp=_parse_time(
                body.get("creationTimestamp"), "metadata.creationTimestamp"
            ),
            finalizers=tuple(
                _string_list(body.get("finalizers"), "metadata.finalizers", "strings")
            ),
        )

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.uid:
            out["uid"] = self.uid
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if self.generation is not None:
            out["generation"] = self.generation
        if self.creation_timestamp is not None:
            out["creationTimestamp"] = _format_time(self.creation_timestamp)
        if self.finalizers:
            out["finalizers"] = list(self.finalizers)
        return out


# --------------------------------------------------------------------------- spec

_SPEC_FIELDS: Final = (
    "syscalls",
    "labelSelector",
    "fieldSelector",
    "hostSelector",
    "sampleRate",
    "duration",
)


def _sample_rate(value: object, path: str) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceSpecError(path, f"expected an integer, got {_type_name(value)} {value!r}")
    if value < 0:
        raise TraceSpecError(path, f"must be >= 0 (0 and 1 deliver every event), got {value}")
    if value > MAX_SAMPLE_RATE:
        raise TraceSpecError(path, f"must be at most {MAX_SAMPLE_RATE}, got {value}")
    return max(value, 1)


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """What to trace. Construction validates and normalizes:

    * ``syscalls``: non-empty; each resolved by ``resolve`` (default :func:`default_resolver`)
      to its canonical name without ``sys_``; duplicates removed, first occurrence kept.
    * ``host_selector``: container names (non-empty strings), duplicates removed.
    * ``sample_rate``: 1-in-N delivery; ``0`` is stored as ``1`` (every event).
    * ``duration``: seconds (> 0, rounded to nanoseconds) after which the trace completes, or
      ``None`` for no limit.
    """

    syscalls: tuple[str, ...]
    label_selector: LabelSelector = field(default_factory=LabelSelector)
    field_selector: FieldSelector = field(default_factory=FieldSelector)
    host_selector: tuple[str, ...] = ()
    sample_rate: int = 1
    duration: float | None = None
    resolve: InitVar[Resolver | None] = None

    def __post_init__(self, resolve: Resolver | None) -> None:
        resolver = default_resolver if resolve is None else resolve
        raw = self.syscalls
        if isinstance(raw, str) or not isinstance(raw, Iterable):
            raise TraceSpecError(
                "spec.syscalls", f"expected a list of syscall names, got {_type_name(raw)}"
            )
        names: list[str] = []
        for i, name in enumerate(raw):
            path = f"spec.syscalls[{i}]"
            _string(name, path)
            if not name:
                raise TraceSpecError(path, "syscall name must not be empty")
            try:
                canonical = resolver(name)
            except ValueError as exc:
                raise TraceSpecError(path, str(exc)) from None
            if canonical not in names:
                names.append(canonical)
        if not names:
            raise TraceSpecError("spec.syscalls", "must list at least one syscall")
        if not isinstance(self.label_selector, LabelSelector):
            raise TraceSpecError("spec.labelSelector", "expected a LabelSelector")
        if not isinstance(self.field_selector, FieldSelector):
            raise TraceSpecError("spec.fieldSelector", "expected a FieldSelector")
        hosts_raw = self.host_selector
        if isinstance(hosts_raw, str) or not isinstance(hosts_raw, Iterable):
            raise TraceSpecError(
                "spec.hostSelector",
                f"expected a list of container names, got {_type_name(hosts_raw)} {hosts_raw!r}",
            )
        hosts: list[str] = []
        for i, host in enumerate(hosts_raw):
            path = f"spec.hostSelector[{i}]"
            if not _string(host, path):
                raise TraceSpecError(path, "container name must not be empty")
            if host not in hosts:
                hosts.append(host)
        rate = _sample_rate(self.sample_rate, "spec.sampleRate")
        duration = self.duration
        if duration is not None:
            if isinstance(duration, bool) or not isinstance(duration, int | float):
                raise TraceSpecError(
                    "spec.duration", f"expected seconds as a number, got {_type_name(duration)}"
                )
            duration = parse_duration(duration)
        object.__setattr__(self, "syscalls", tuple(names))
        object.__setattr__(self, "host_selector", tuple(hosts))
        object.__setattr__(self, "sample_rate", rate)
        object.__setattr__(self, "duration", duration)

    @classmethod
    def from_dict(
        cls, d: object, resolve: Resolver | None = None, field: str = "spec"
    ) -> TraceSpec:
        """Build from the manifest's ``spec`` (camelCase keys); unknown keys are errors."""
        try:
            body = _mapping(d, "spec")
            _check_known(body, _SPEC_FIELDS, "spec")
            if body.get("syscalls") is None:
                raise TraceSpecError("spec.syscalls", "required (a list of syscall names)")
            syscalls = _string_list(body["syscalls"], "spec.syscalls", "syscall names")
            hosts = _string_list(body.get("hostSelector"), "spec.hostSelector", "container names")
            label_raw = body.get("labelSelector")
            if label_raw is not None and not isinstance(label_raw, Mapping):
                raise TraceSpecError(
                    "spec.labelSelector", f"expected a mapping, got {_type_name(label_raw)}"
                )
            labels = LabelSelector.from_dict(label_raw, "spec.labelSelector")
            fields = FieldSelector.from_dict(body.get("fieldSelector"), "spec.fieldSelector")
            raw_duration = body.get("duration")
            duration = None if raw_duration is None else parse_duration(raw_duration)
            rate = _sample_rate(body.get("sampleRate"), "spec.sampleRate")
            return cls(tuple(syscalls), labels, fields, tuple(hosts), rate, duration, resolve)
        except TraceSpecError as exc:
            if field == "spec":
                raise
            raise _reprefix(exc, field.removesuffix("spec")) from None

    def to_dict(self) -> dict[str, object]:
        """The manifest's ``spec``; empty selectors and an unset duration are omitted."""
        out: dict[str, object] = {"syscalls": list(self.syscalls)}
        if not self.label_selector.is_empty():
            out["labelSelector"] = self.label_selector.to_dict()
        if not self.field_selector.is_empty():
            out["fieldSelector"] = self.field_selector.to_dict()
        if self.host_selector:
            out["hostSelector"] = list(self.host_selector)
        out["sampleRate"] = self.sample_rate
        if self.duration is not None:
            out["duration"] = format_duration(self.duration)
        return out


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
        text = _string(value, field)
        for state in cls:
            if state.value == text:
                return state
        expected = ", ".join(s.value for s in cls)
        raise TraceSpecError(field, f"unknown state {text!r} (expected {expected} or empty)")

    @property
    def finished(self) -> bool:
        return self in (TraceState.COMPLETE, TraceState.FAILED)


@dataclass(frozen=True, slots=True)
class TraceStatus:
    """An immutable snapshot of ``status``. Times are aware UTC (naive input is taken as UTC)."""

    job_id: str = ""
    state: TraceState = TraceState.PENDING
    start_time: datetime | None = None
    completion_time: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.job_id, str):
            raise TraceSpecError("status.jobID", "expected a string")
        object.__setattr__(self, "state", TraceState.parse(self.state))
        for name in ("start_time", "completion_time"):
            moment = getattr(self, name)
            if moment is not None:
                if not isinstance(moment, datetime):
                    raise TraceSpecError(f"status.{name}", "expected a datetime")
                object.__setattr__(self, name, _as_utc(moment))

    @classmethod
    def from_dict(cls, d: object, field: str = "status") -> TraceStatus:
        """Read ours (``jobID``, ``completionTime``) and swoll's (``job``, ``completeTime``)
        keys; ours win if both are present. Unknown keys are ignored (controllers own status)."""
        if d is None:
            return cls()
        body = _mapping(d, field)
        job_key = "jobID" if body.get("jobID") not in (None, "") else "job"
        done_key = "completionTime" if body.get("completionTime") is not None else "completeTime"
        return cls(
            job_id=_string(body.get(job_key) or "", f"{field}.{job_key}"),
            state=TraceState.parse(body.get("state"), f"{field}.state"),
            start_time=_parse_time(body.get("startTime"), f"{field}.startTime"),
            completion_time=_parse_time(body.get(done_key), f"{field}.{done_key}"),
        )

    def to_dict(self, api_version: str = API_VERSION) -> dict[str, object]:
        """The ``status`` with the key names of ``api_version``'s group (swoll: ``job`` and
        ``completeTime``; ours: ``jobID`` and ``completionTime``); unset times are omitted."""
        swoll = api_version == SWOLL_API_VERSION
        out: dict[str, object] = {"state": self.state.value}
        if self.job_id:
            out["job" if swoll else "jobID"] = self.job_id
        if self.start_time is not None:
            out["startTime"] = _format_time(self.start_time)
        if self.completion_time is not None:
            out["completeTime" if swoll else "completionTime"] = _format_time(self.completion_time)
        return out


class _Unset(enum.Enum):
    UNSET = 0


_UNSET: Final = _Unset.UNSET


# --------------------------------------------------------------------------- trace


def _check_type(api_version: str, kind: str) -> None:
    if api_version not in SUPPORTED_API_VERSIONS:
        raise TraceSpecError(
            "apiVersion",
            f"unsupported apiVersion {api_version!r} "
            f"(expected {' or '.join(SUPPORTED_API_VERSIONS)})",
        )
    if kind != KIND:
        raise TraceSpecError("kind", f"expected {KIND!r}, got {kind!r}")


class Trace:
    """One Trace resource: immutable ``api_version``, ``kind``, ``metadata`` and ``spec``, and a
    ``status`` snapshot that the hub replaces under a lock.

    Thread safety: :attr:`status` returns an immutable :class:`TraceStatus`; the ``update_status``
    and ``mark_*`` methods swap it atomically, so concurrent readers and writers never see a
    half-updated status. Equality compares everything including the current status; the hash
    covers only the immutable parts, so a Trace can key a dict while its status changes.
    """

    __slots__ = ("_api_version", "_kind", "_lock", "_metadata", "_spec", "_status")

    def __init__(
        self,
        api_version: str,
        kind: str,
        metadata: TraceMetadata,
        spec: TraceSpec,
        status: TraceStatus | None = None,
    ) -> None:
        _check_type(api_version, kind)
        if not isinstance(metadata, TraceMetadata):
            raise TraceSpecError("metadata", "expected a TraceMetadata")
        if not isinstance(spec, TraceSpec):
            raise TraceSpecError("spec", "expected a TraceSpec")
        if status is not None and not isinstance(status, TraceStatus):
            raise TraceSpecError("status", "expected a TraceStatus")
        self._api_version = api_version
        self._kind = kind
        self._metadata = metadata
        self._spec = spec
        self._status = status if status is not None else TraceStatus()
        self._lock = threading.Lock()

    # ---- construction

    @classmethod
    def new(
        cls,
        name: str,
        syscalls: Iterable[str],
        namespace: str = "default",
        labels: LabelSelector | Mapping[str, str] | str | None = None,
        fields: FieldSelector | str | None = None,
        hosts: Iterable[str] = (),
        sample_rate: int = 1,
        duration: float | str | timedelta | None = None,
        *,
        resolve: Resolver | None = None,
        api_version: str = API_VERSION,
    ) -> Trace:
        """A pending Trace built in code. ``labels`` is a selector, a ``matchLabels`` mapping or
        ``kubectl -l`` text; ``fields`` a selector or ``--field-selector`` text; ``duration``
        seconds, a Go duration string or a ``timedelta``."""
        if labels is None:
            label_selector = LabelSelector()
        elif isinstance(labels, LabelSelector):
            label_selector = labels
        elif isinstance(labels, str):
            label_selector = LabelSelector.parse(labels, "spec.labelSelector")
        else:
            label_selector = LabelSelector.from_dict(
                {"matchLabels": dict(labels)}, "spec.labelSelector"
            )
        if fields is None:
            field_selector = FieldSelector()
        elif isinstance(fields, FieldSelector):
            field_selector = fields
        else:
            field_selector = FieldSelector.parse(fields, "spec.fieldSelector")
        if isinstance(syscalls, str):
            raise TraceSpecError("spec.syscalls", "expected a list of syscall names, got string")
        if isinstance(hosts, str):
            raise TraceSpecError(
                "spec.hostSelector", "expected a list of container names, got string"
            )
        spec = TraceSpec(
            syscalls=tuple(syscalls),
            label_selector=label_selector,
            field_selector=field_selector,
            host_selector=tuple(hosts),
            sample_rate=sample_rate,
            duration=None if duration is None else parse_duration(duration),
            resolve=resolve,
        )
        return cls(api_version, KIND, TraceMetadata(name=name, namespace=namespace), spec)

    @classmethod
    def from_dict(cls, d: object, resolve: Resolver | None = None) -> Trace:
        """Build from a manifest dict of either API group; raises :class:`TraceSpecError`."""
        body = _mapping(d, "document")
        _check_known(body, ("apiVersion", "kind", "metadata", "spec", "status"), "")
        api_version = body.get("apiVersion")
        if api_version is None:
            raise TraceSpecError("apiVersion", "required")
        api_version = _string(api_version, "apiVersion")
        kind = _string(body.get("kind"), "kind") if body.get("kind") is not None else None
        if kind is None:
            raise TraceSpecError("kind", "required")
        if kind in LIST_KINDS:
            raise TraceSpecError("kind", f"{kind} holds several traces: use load_traces()")
        _check_type(api_version, kind)
        if body.get("metadata") is None:
            raise TraceSpecError("metadata.name", "required")
        metadata = TraceMetadata.from_dict(body["metadata"])
        if body.get("spec") is None:
            raise TraceSpecError("spec", "required")
        spec = TraceSpec.from_dict(body["spec"], resolve)
        status = TraceStatus.from_dict(body.get("status"))
        return cls(api_version, kind, metadata, spec, status)

    @classmethod
    def from_yaml(cls, text: str, resolve: Resolver | None = None) -> Trace:
        """Exactly one Trace from YAML (or JSON) text."""
        traces = _load_text(text, resolve)
        if len(traces) != 1:
            raise TraceSpecError("document", f"expected exactly one Trace, found {len(traces)}")
        return traces[0]

    @classmethod
    def from_json(cls, text: str, resolve: Resolver | None = None) -> Trace:
        """Exactly one Trace from JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceSpecError("document", f"invalid JSON: {exc}") from None
        return cls.from_dict(data, resolve)

    # ---- immutable parts

    @property
    def api_version(self) -> str:
        return self._api_version

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def metadata(self) -> TraceMetadata:
        return self._metadata

    @property
    def spec(self) -> TraceSpec:
        return self._spec

    @property
    def name(self) -> str:
        return self._metadata.name

    @property
    def namespace(self) -> str:
        return self._metadata.namespace

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)``, unique per cluster for one API group."""
        return (self._metadata.namespace, self._metadata.name)

    # ---- status

    @property
    def status(self) -> TraceStatus:
        """The current status snapshot (immutable)."""
        with self._lock:
            return self._status

    def set_status(self, status: TraceStatus) -> None:
        if not isinstance(status, TraceStatus):
            raise TypeError(f"expected a TraceStatus, got {type(status).__name__}")
        with self._lock:
            self._status = status

    def update_status(
        self,
        *,
        job_id: str | _Unset = _UNSET,
        state: TraceState | _Unset = _UNSET,
        start_time: datetime | _Unset | None = _UNSET,
        completion_time: datetime | _Unset | None = _UNSET,
    ) -> TraceStatus:
        """Atomically replace the given status fields; returns the new snapshot."""
        changes: dict[str, Any] = {}
        if not isinstance(job_id, _Unset):
            changes["job_id"] = job_id
        if not isinstance(state, _Unset):
            changes["state"] = state
        if not isinstance(start_time, _Unset):
            changes["start_time"] = start_time
        if not isinstance(completion_time, _Unset):
            changes["completion_time"] = completion_time
        with self._lock:
            self._status = dataclasses.replace(self._status, **changes)
            return self._status

    def mark_running(self, job_id: str, at: datetime | None = None) -> TraceStatus:
        """Running under ``job_id`` since ``at`` (default now); clears the completion time."""
        return self.update_status(
            job_id=job_id,
            state=TraceState.RUNNING,
            start_time=at if at is not None else datetime.now(UTC),
            completion_time=None,
        )

    def mark_complete(self, at: datetime | None = None) -> TraceStatus:
        """Complete at ``at`` (default now)."""
        return self.update_status(
            state=TraceState.COMPLETE, completion_time=at if at is not None else datetime.now(UTC)
        )

    def mark_failed(self, at: datetime | None = None) -> TraceStatus:
        """Failed at ``at`` (default now)."""
        return self.update_status(
            state=TraceState.FAILED, completion_time=at if at is not None else datetime.now(UTC)
        )

    def deadline(self) -> datetime | None:
        """When a started trace with a duration is due to complete, else ``None``."""
        start = self.status.start_time
        if start is None or self._spec.duration is None:
            return None
        return start + timedelta(seconds=self._spec.duration)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the deadline has passed (``False`` without a deadline)."""
        deadline = self.deadline()
        if deadline is None:
            return False
        return _as_utc(now if now is not None else datetime.now(UTC)) >= deadline

    # ---- serialization

    def to_dict(self) -> dict[str, object]:
        """The manifest; ``status`` is omitted while it is the default (pending, no job)."""
        out: dict[str, object] = {
            "apiVersion": self._api_version,
            "kind": self._kind,
            "metadata": self._metadata.to_dict(),
            "spec": self._spec.to_dict(),
        }
        status = self.status
        if status != TraceStatus():
            out["status"] = status.to_dict(self._api_version)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    # ---- value behaviour

    def _parts(self) -> tuple[str, str, TraceMetadata, TraceSpec]:
        return (self._api_version, self._kind, self._metadata, self._spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return self._parts() == other._parts() and self.status == other.status

    def __hash__(self) -> int:
        return hash(self._parts())

    def __repr__(self) -> str:
        return (
            f"Trace({self._metadata.namespace}/{self._metadata.name}, "
            f"syscalls={list(self._spec.syscalls)}, state={self.status.state.value})"
        )

    def __reduce__(
        self,
    ) -> tuple[type[Trace], tuple[str, str, TraceMetadata, TraceSpec, TraceStatus]]:
        return (Trace, (*self._parts(), self.status))


# --------------------------------------------------------------------------- loading


def _items(data: object, path: str) -> list[tuple[str, object]]:
    """Flatten one document into ``(path prefix, trace dict)`` pairs (Lists expand)."""
    if data is None:
        return []
    if isinstance(data, list):
        return [(f"{path}[{i}].", item) for i, item in enumerate(data)]
    body = _mapping(data, path or "document")
    if body.get("kind") in LIST_KINDS:
        api_version = body.get("apiVersion")
        if body["kind"] == "TraceList" and api_version not in SUPPORTED_API_VERSIONS:
            raise TraceSpecError(
                f"{path}apiVersion",
                f"unsupported apiVersion {api_version!r} for TraceList "
                f"(expected {' or '.join(SUPPORTED_API_VERSIONS)})",
            )
        raw = body.get("items")
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise TraceSpecError(f"{path}items", f"expected a list, got {_type_name(raw)}")
        return [(f"{path}items[{i}].", item) for i, item in enumerate(raw)]
    return [(path, body)]


def _load_text(text: str, resolve: Resolver | None) -> list[Trace]:
    stripped = text.lstrip()
    documents: list[object]
    if stripped.startswith(("{", "[")):
        try:
            documents = [json.loads(text)]
        except json.JSONDecodeError:
            documents = _yaml_documents(text)
    else:
        documents = _yaml_documents(text)
    present = [doc for doc in documents if doc is not None]
    pairs: list[tuple[str, object]] = []
    for i, doc in enumerate(present):
        pairs.extend(_items(doc, f"documents[{i}]." if len(present) > 1 else ""))
    traces: list[Trace] = []
    for prefix, item in pairs:
        try:
            traces.append(Trace.from_dict(item, resolve))
        except TraceSpecError as exc:
            if not prefix:
                raise
            raise _reprefix(exc, prefix) from None
    return traces


def _yaml_documents(text: str) -> list[object]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise TraceSpecError("document", f"invalid YAML: {exc}") from None


def load_traces(
    text_or_path: str | os.PathLike[str], resolve: Resolver | None = None
) -> list[Trace]:
    """All Traces in multi-document YAML, JSON, a ``TraceList``/``List``, or a JSON array.

    A ``PathLike`` is read as a file; so is a ``str`` that is one line without ``:`` (no
    manifest can look like that) or that names an existing file. Errors in one of several
    documents or items carry the position in their field path (``documents[1].spec...``,
    ``items[0].spec...``).
    """
    if isinstance(text_or_path, os.PathLike):
        return _load_text(Path(text_or_path).read_text(encoding="utf-8"), resolve)
    if not isinstance(text_or_path, str):
        raise TypeError(f"expected text or a path, got {type(text_or_path).__name__}")
    if "\n" not in text_or_path and (":" not in text_or_path or Path(text_or_path).is_file()):
        return _load_text(Path(text_or_path).read_text(encoding="utf-8"), resolve)
    return _load_text(text_or_path, resolve)


def new_job_id(trace: Trace) -> str:
    """A fresh job id ``<name>-<8 hex>`` (random, from uuid4).

    The name part is cut to 54 characters so the id stays a valid label value (<= 63).
    """
    stem = trace.name[:54].rstrip("-.")
    return f"{stem}-{uuid.uuid4().hex[:8]}"
