"""Reading Trace manifests: YAML (multi-document) or JSON text, files, ``TraceList`` and
kubectl ``List`` documents and plain arrays, down to one mapping per Trace
(:func:`syshub.spec.trace.load_traces` validates them).

Errors in one of several documents or items carry the position in their field path
(``documents[1].spec.syscalls[0]``, ``items[0].spec...``). Pure Python.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from syshub.errors import TraceSpecError
from syshub.spec.common import expect_list, expect_mapping, join_path
from syshub.spec.model import LIST_KINDS, SUPPORTED_API_VERSIONS

__all__ = ["manifest_items", "read_manifests"]


def _items(data: object, path: str) -> list[tuple[str, object]]:
    """Flatten one document into ``(path prefix, trace dict)`` pairs (Lists expand)."""
    if data is None:
        return []
    if isinstance(data, list):
        return [(f"{path}[{i}]", item) for i, item in enumerate(data)]
    body = expect_mapping(data, path or "document")
    if body.get("kind") not in LIST_KINDS:
        return [(path, body)]
    api_version = body.get("apiVersion")
    if body["kind"] == "TraceList" and api_version not in SUPPORTED_API_VERSIONS:
        raise TraceSpecError(
            join_path(path, "apiVersion"),
            f"unsupported apiVersion {api_version!r} for TraceList "
            f"(expected {' or '.join(SUPPORTED_API_VERSIONS)})",
        )
    raw = body.get("items")
    if raw is None:
        return []
    items_path = join_path(path, "items")
    return [(f"{items_path}[{i}]", item) for i, item in enumerate(expect_list(raw, items_path))]


def _yaml_documents(text: str) -> list[object]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise TraceSpecError("document", f"invalid YAML: {problem}") from None


def manifest_items(text: str) -> list[tuple[str, object]]:
    """The Trace documents in YAML or JSON ``text``, each with its path prefix (``""`` for a
    single document, ``documents[1]``, ``items[0]``, ``documents[0].items[2]``)."""
    documents: list[object]
    if text.lstrip().startswith(("{", "[")):
        try:
            documents = [json.loads(text)]
        except json.JSONDecodeError:
            documents = _yaml_documents(text)
    else:
        documents = _yaml_documents(text)
    present = [doc for doc in documents if doc is not None]
    pairs: list[tuple[str, object]] = []
    for i, doc in enumerate(present):
        pairs.extend(_items(doc, f"documents[{i}]" if len(present) > 1 else ""))
    return pairs


def read_manifests(text_or_path: str | os.PathLike[str]) -> list[tuple[str, object]]:
    """:func:`manifest_items` of manifest text or of a file.

    A ``PathLike`` is read as a file; so is a ``str`` that is one line without ``:`` (no
    manifest can look like that) or that names an existing file.
    """
    if isinstance(text_or_path, os.PathLike):
        return manifest_items(Path(text_or_path).read_text(encoding="utf-8"))
    if not isinstance(text_or_path, str):
        raise TypeError(f"expected text or a path, got {type(text_or_path).__name__}")
    if "\n" not in text_or_path and (":" not in text_or_path or Path(text_or_path).is_file()):
        return manifest_items(Path(text_or_path).read_text(encoding="utf-8"))
    return manifest_items(text_or_path)
