"""Selector matching, as ``k8s.io/apimachinery/pkg/labels`` and the pod field selectors do it:
every requirement must hold (AND); ``In`` needs the key present with one of the values;
``NotIn`` also holds when the key is absent; an empty selector matches everything; a field
missing from the tested mapping reads as ``""``. Pure functions over plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syshub.spec.selectors.parse import EXISTS, IN, NOT_IN

__all__ = ["fields_match", "labels_match", "pod_fields", "requirement_matches"]


def requirement_matches(
    key: str, operator: str, values: tuple[str, ...], labels: Mapping[str, str]
) -> bool:
    """Whether ``labels`` satisfy one ``matchExpressions`` entry."""
    if operator == IN:
        return key in labels and labels[key] in values
    if operator == NOT_IN:
        return key not in labels or labels[key] not in values
    if operator == EXISTS:
        return key in labels
    return key not in labels  # DoesNotExist


def labels_match(
    match_labels: Mapping[str, str],
    expressions: Iterable[tuple[str, str, tuple[str, ...]]],
    labels: Mapping[str, str],
) -> bool:
    """``match_labels`` AND every expression."""
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    return all(requirement_matches(k, op, vs, labels) for k, op, vs in expressions)


def fields_match(terms: Iterable[tuple[str, str, str]], fields: Mapping[str, str]) -> bool:
    """Every ``(field, "=" | "!=", value)`` term holds; a missing field reads as ``""``."""
    return all((fields.get(name, "") == value) is (op == "=") for name, op, value in terms)


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
