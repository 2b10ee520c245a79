"""Kubernetes label and field selectors, with the API server's validation rules.

Traces pick pods with a ``labelSelector`` (``metav1.LabelSelector``: ``matchLabels`` plus
``matchExpressions``) and a ``fieldSelector``. Both can be written as a manifest dict or as the
string syntax of ``kubectl -l`` / ``kubectl --field-selector``. :mod:`.parse` reads text and
dicts, :mod:`.match` holds the Kubernetes matching rules, :mod:`.model` the immutable values.
Pure Python; no privileges needed.
"""

from __future__ import annotations

from syshub.spec.common import FrozenMap, validate_label_key, validate_label_value
from syshub.spec.selectors.model import FieldSelector, LabelSelector, Requirement
from syshub.spec.selectors.parse import FIELD_SELECTOR_FIELDS, OPERATORS

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
