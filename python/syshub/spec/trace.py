"""The ``Trace`` resource (v1alpha1): what to trace, where, and how it is going.

A Trace names syscalls and picks pods/containers with label, field and host selectors. Two API
groups are read: ours (``syshub.io/v1alpha1``) and swoll's
(``tools.swoll.criticalstack.com/v1alpha1``), whose manifests load unchanged. Loading validates
everything and every error is a :class:`~syshub.errors.TraceSpecError` whose ``field`` is the
path of the offending field (``spec.syscalls[2]``, ``spec.labelSelector.matchLabels``).
What swoll writes is accepted as swoll meant it (docs/trace-spec.md): no ``metadata.name``
(a name is generated, ``generateName`` semantics), ``metadata.namespace: ""`` (every
namespace), ``duration: "0s"`` (no limit).

Metadata and spec are immutable values. The status is owned by the hub and changes while a job
runs: a :class:`Trace` holds an immutable :class:`TraceStatus` snapshot and replaces it under a
lock (:meth:`Trace.update_status`, :meth:`Trace.mark_running`, ...), so readers on other threads
always see a consistent status. Pure Python; no privileges needed.
"""

from __future__ import annotations

import enum
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

import yaml
from pydantic import ConfigDict, Field, StrictStr, field_validator

from syshub.errors import TraceSpecError
from syshub.spec.base import SpecModel, validating_init
from syshub.spec.load import manifest_items, read_manifests
from syshub.spec.model import (
    API_VERSION,
    KIND,
    LIST_KINDS,
    SUPPORTED_API_VERSIONS,
    ObjectMeta,
    Resolver,
    TraceSpec,
    TraceState,
    TraceStatus,
)
from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.spec.timestamp import as_utc

__all__ = [
    "Trace",
    "TraceSpec",
    "TraceState",
    "TraceStatus",
    "load_traces",
    "new_job_id",
]

#: Status snapshots are swapped under this lock (one for all traces: updates are rare).
_STATUS_LOCK: Final = threading.Lock()


class _Unset(enum.Enum):
    UNSET = 0


_UNSET: Final = _Unset.UNSET


def _label_selector(labels: LabelSelector | Mapping[str, str] | str | None) -> LabelSelector:
    if labels is None:
        return LabelSelector()
    if isinstance(labels, LabelSelector):
        return labels
    if isinstance(labels, str):
        return LabelSelector.parse(labels, "spec.labelSelector")
    return LabelSelector.from_dict({"matchLabels": dict(labels)}, "spec.labelSelector")


class Trace(SpecModel):
    """One Trace resource: immutable ``api_version``, ``kind``, ``metadata`` and ``spec``, and a
    ``status`` snapshot that the hub replaces under a lock.

    Thread safety: :attr:`status` is an immutable :class:`TraceStatus`; the ``update_status``
    and ``mark_*`` methods swap it atomically, so concurrent readers and writers never see a
    half-updated status. Assignment to any field raises ``AttributeError``. Equality compares
    everything including the current status; the hash covers only the immutable parts, so a
    Trace can key a dict while its status changes.
    """

    model_config = ConfigDict(
        json_schema_extra={"description": "syscalls to trace in the selected pods' containers"}
    )
    always_written: ClassVar[frozenset[str]] = frozenset({"apiVersion", "kind", "metadata"})

    api_version: StrictStr = Field(
        alias="apiVersion", json_schema_extra={"enum": list(SUPPORTED_API_VERSIONS)}
    )
    kind: StrictStr = Field(json_schema_extra={"enum": [KIND]})
    metadata: ObjectMeta
    spec: TraceSpec
    status: TraceStatus = Field(default_factory=TraceStatus)

    @validating_init
    def __init__(self, /, resolve: Resolver | None = None, **data: Any) -> None:
        self._validate_into(data, {"resolve": resolve})

    @classmethod
    def _prepare(cls, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("metadata", {})  # no metadata: a generated name, namespace default
        return body

    @field_validator("api_version")
    @classmethod
    def _check_api_version(cls, api_version: str) -> str:
        if api_version not in SUPPORTED_API_VERSIONS:
            raise TraceSpecError(
                "",
                f"unsupported apiVersion {api_version!r} "
                f"(expected {' or '.join(SUPPORTED_API_VERSIONS)})",
            )
        return api_version

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, kind: str) -> str:
        if kind in LIST_KINDS:
            raise TraceSpecError("", f"{kind} holds several traces: use load_traces()")
        if kind != KIND:
            raise TraceSpecError("", f"expected {KIND!r}, got {kind!r}")
        return kind

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Trace fields cannot be assigned ({name!r}); use update_status()")

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
        """A pending Trace built in code. An empty ``name`` is generated (``"trace-"`` and 5
        random characters); ``namespace=""`` selects pods of every namespace. ``labels`` is a
        selector, a ``matchLabels`` mapping or ``kubectl -l`` text; ``fields`` a selector or
        ``--field-selector`` text; ``duration`` seconds, a Go duration string or a
        ``timedelta`` (zero: no limit)."""
        if fields is not None and not isinstance(fields, FieldSelector):
            fields = FieldSelector.parse(fields, "spec.fieldSelector")
        rate: dict[str, Any] = {} if sample_rate == 1 else {"sample_rate": sample_rate}
        spec = TraceSpec(
            resolve=resolve,
            syscalls=list(syscalls) if not isinstance(syscalls, str) else syscalls,
            label_selector=_label_selector(labels),
            field_selector=fields,
            host_selector=list(hosts) if not isinstance(hosts, str) else hosts,
            duration=duration,
            **rate,
        )
        metadata = ObjectMeta(name=name, namespace=namespace)
        return cls(api_version=api_version, kind=KIND, metadata=metadata, spec=spec)

    @classmethod
    def from_dict(cls, d: object, resolve: Resolver | None = None) -> Trace:
        """Build from a manifest dict of either API group; raises :class:`TraceSpecError`."""
        return cls.from_manifest(d, {"resolve": resolve})

    @classmethod
    def from_yaml(cls, text: str, resolve: Resolver | None = None) -> Trace:
        """Exactly one Trace from YAML (or JSON) text."""
        traces = _build_all(manifest_items(text), resolve)
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

    # ---- names

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def all_namespaces(self) -> bool:
        """Whether the trace selects pods of every namespace (``metadata.namespace: ""``)."""
        return self.metadata.namespace == ""

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)``, unique per cluster for one API group."""
        return (self.metadata.namespace, self.metadata.name)

    # ---- status

    def set_status(self, status: TraceStatus) -> None:
        if not isinstance(status, TraceStatus):
            raise TypeError(f"expected a TraceStatus, got {type(status).__name__}")
        with _STATUS_LOCK:
            self.__dict__["status"] = status

    def update_status(
        self,
        *,
        job_id: str | _Unset = _UNSET,
        state: TraceState | _Unset = _UNSET,
        start_time: datetime | _Unset | None = _UNSET,
        completion_time: datetime | _Unset | None = _UNSET,
    ) -> TraceStatus:
        """Atomically replace the given status fields; returns the new snapshot."""
        with _STATUS_LOCK:
            current = self.status
            status = TraceStatus(
                job_id=current.job_id if isinstance(job_id, _Unset) else job_id,
                state=current.state if isinstance(state, _Unset) else state,
                start_time=current.start_time if isinstance(start_time, _Unset) else start_time,
                completion_time=current.completion_time
                if isinstance(completion_time, _Unset)
                else completion_time,
            )
            self.__dict__["status"] = status
            return status

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
        if start is None or self.spec.duration is None:
            return None
        return start + timedelta(seconds=self.spec.duration)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the deadline has passed (``False`` without a deadline)."""
        deadline = self.deadline()
        if deadline is None:
            return False
        return as_utc(now if now is not None else datetime.now(UTC)) >= deadline

    # ---- serialization

    def to_dict(self) -> dict[str, Any]:
        """The manifest; ``status`` is omitted while it is the default (pending, no job)."""
        out: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.metadata.to_dict(),
            "spec": self.spec.to_dict(),
        }
        status = self.status
        if status != TraceStatus():
            out["status"] = status.to_dict(self.api_version)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    # ---- value behaviour

    def __hash__(self) -> int:
        return hash((self.api_version, self.kind, self.metadata, self.spec))

    def __repr__(self) -> str:
        return (
            f"Trace({self.metadata.namespace}/{self.metadata.name}, "
            f"syscalls={list(self.spec.syscalls)}, state={self.status.state.value})"
        )


def _build_all(items: list[tuple[str, object]], resolve: Resolver | None) -> list[Trace]:
    context = {"resolve": resolve}
    return [Trace.from_manifest(item, context, field=prefix) for prefix, item in items]


def load_traces(
    text_or_path: str | os.PathLike[str], resolve: Resolver | None = None
) -> list[Trace]:
    """All Traces in multi-document YAML, JSON, a ``TraceList``/``List``, or a JSON array.

    A ``PathLike`` is read as a file; so is a ``str`` that is one line without ``:`` (no
    manifest can look like that) or that names an existing file. Errors in one of several
    documents or items carry the position in their field path (``documents[1].spec...``,
    ``items[0].spec...``).
    """
    return _build_all(read_manifests(text_or_path), resolve)


def new_job_id(trace: Trace) -> str:
    """A fresh job id ``<name>-<8 hex>`` (random, from uuid4).

    The name part is cut to 54 characters so the id stays a valid label value (<= 63).
    """
    stem = trace.name[:54].rstrip("-.")
    return f"{stem}-{uuid.uuid4().hex[:8]}"
