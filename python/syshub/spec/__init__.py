"""Trace specs: the Trace model (pydantic), selectors, durations, argument limits and the
manifest JSON schema.

Modules: :mod:`.model` (metadata, spec, status), :mod:`.trace` (the Trace resource),
:mod:`.load` (manifests), :mod:`.selectors`, :mod:`.duration`, :mod:`.timestamp`,
:mod:`.limits` (ranges shared with the Rust core, :class:`~.limits.Capture`), :mod:`.schema`.
"""

from __future__ import annotations

from syshub.spec.duration import format_duration, parse_duration
from syshub.spec.limits import Capture, validate_ring_bytes, validate_sample_rate
from syshub.spec.model import (
    ALL_NAMESPACES,
    API_VERSION,
    DEFAULT_GENERATE_NAME,
    SUPPORTED_API_VERSIONS,
    SWOLL_API_VERSION,
    ObjectMeta,
    Resolver,
    TraceMetadata,
    TraceSpec,
    TraceState,
    TraceStatus,
    default_resolver,
    generate_name,
)
from syshub.spec.schema import trace_json_schema
from syshub.spec.selectors import FieldSelector, FrozenMap, LabelSelector, Requirement
from syshub.spec.trace import Trace, load_traces, new_job_id

__all__ = [
    "ALL_NAMESPACES",
    "API_VERSION",
    "DEFAULT_GENERATE_NAME",
    "SUPPORTED_API_VERSIONS",
    "SWOLL_API_VERSION",
    "Capture",
    "FieldSelector",
    "FrozenMap",
    "LabelSelector",
    "ObjectMeta",
    "Requirement",
    "Resolver",
    "Trace",
    "TraceMetadata",
    "TraceSpec",
    "TraceState",
    "TraceStatus",
    "default_resolver",
    "format_duration",
    "generate_name",
    "load_traces",
    "new_job_id",
    "parse_duration",
    "trace_json_schema",
    "validate_ring_bytes",
    "validate_sample_rate",
]
