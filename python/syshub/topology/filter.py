"""The one container filter every observer applies: namespace, label, field and host selectors.

An observer's :meth:`~syshub.topology.Observer.copy` narrows its parent's
:class:`ContainerFilter` (every part must hold). Selectors are given as
:class:`~syshub.spec.selectors.LabelSelector` / :class:`~syshub.spec.selectors.FieldSelector`,
as selector strings (``"app=demo,tier in (a,b)"``, ``"status.phase=Running"``), as dicts
(``{"matchLabels": ..., "matchExpressions": [...]}`` or plain ``{key: value}``), or as any
object with a ``matches(mapping) -> bool`` method. Pure Python; no privileges needed.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, Self, cast, runtime_checkable

from syshub.spec.selectors import FieldSelector, LabelSelector
from syshub.topology.model import Closing, Container


@runtime_checkable
class Selector(Protocol):
    """Anything that decides on a mapping (labels, or field path -> value)."""

    def matches(self, values: Mapping[str, str], /) -> bool: ...


class _Parsed(Protocol):
    def matches(self, values: Mapping[str, str], /) -> bool: ...

    def is_empty(self) -> bool: ...


def _selector(
    value: object,
    what: str,
    kind: type[LabelSelector] | type[FieldSelector],
    parse: Callable[[str], _Parsed],
    from_dict: Callable[[Mapping[str, object]], _Parsed],
) -> Selector | None:
    if value is None:
        return None
    sel: _Parsed
    if isinstance(value, kind):
        sel = value
    elif isinstance(value, str):
        sel = parse(value)
    elif isinstance(value, Mapping):
        body = {str(k): v for k, v in value.items()}
        shaped = set(body) <= {"matchLabels", "matchExpressions"}
        sel = from_dict(body if shaped else {"matchLabels": body})
    elif callable(getattr(value, "matches", None)):
        return cast(Selector, value)  # duck-typed: has matches()
    else:
        raise TypeError(
            f"{what} must be None, a {kind.__name__}, a selector string, a dict or an "
            f"object with a .matches(mapping) method, not {type(value).__name__}"
        )
    return None if sel.is_empty() else sel


#: What ``copy()`` and the observers accept as a selector (see the module doc).
SelectorArg = object | None


def as_label_selector(value: object, what: str = "label_selector") -> Selector | None:
    """``value`` as a label selector; ``None`` when it selects everything."""
    return _selector(value, what, LabelSelector, LabelSelector.parse, LabelSelector.from_dict)


def as_field_selector(value: object, what: str = "field_selector") -> Selector | None:
    """``value`` as a field selector; ``None`` when it selects everything."""
    return _selector(value, what, FieldSelector, FieldSelector.parse, FieldSelector.from_dict)


def container_labels(c: Container) -> dict[str, str]:
    """The labels a selector sees: the container's over its pod's."""
    return {**c.pod_labels, **c.labels}


def container_fields(c: Container) -> dict[str, str]:
    """The field-selector view of a running container: its pod's Kubernetes field paths."""
    return {
        "metadata.name": c.pod,
        "metadata.namespace": c.namespace,
        "metadata.uid": c.pod_uid,
        "spec.nodeName": c.node,
        "status.phase": "Running",
    }


def selects_host(hosts: Iterable[str], c: Container) -> bool:
    """A Trace's ``hostSelector``: container names; empty selects every container."""
    names = tuple(hosts)
    return not names or c.name in names


@dataclass(frozen=True, slots=True)
class ContainerFilter:
    """A conjunction: every namespace, selector and host list must admit the container.

    A container without a Kubernetes namespace (a local process) is admitted by any
    namespace: a Trace always names one (``default`` at least).
    """

    namespaces: tuple[str, ...] = ()
    labels: tuple[Selector, ...] = ()
    fields: tuple[Selector, ...] = ()
    hosts: tuple[tuple[str, ...], ...] = ()

    def narrow(
        self,
        namespace: str | None = None,
        label_selector: object | None = None,
        field_selector: object | None = None,
        hosts: Iterable[str] = (),
    ) -> ContainerFilter:
        """This filter AND the given constraints (``None`` / empty: no constraint)."""
        labels = as_label_selector(label_selector)
        fields = as_field_selector(field_selector)
        names = tuple(hosts)
        return ContainerFilter(
            self.namespaces + ((namespace,) if namespace else ()),
            self.labels + ((labels,) if labels is not None else ()),
            self.fields + ((fields,) if fields is not None else ()),
            self.hosts + ((names,) if names else ()),
        )

    def admits(self, namespace: str, labels: Mapping[str, str], fields: Mapping[str, str]) -> bool:
        """Namespace and selectors only: what a pod (before its containers) must satisfy."""
        if namespace and any(ns != namespace for ns in self.namespaces):
            return False
        if not all(sel.matches(labels) for sel in self.labels):
            return False
        return all(sel.matches(fields) for sel in self.fields)

    def matches(self, c: Container) -> bool:
        if not all(selects_host(names, c) for names in self.hosts):
            return False
        return self.admits(c.namespace, container_labels(c), container_fields(c))

    def select(self, containers: Iterable[Container]) -> list[Container]:
        return [c for c in containers if self.matches(c)]

    def describe(self) -> list[str]:
        """Human-readable parts, for ``repr``."""
        parts: list[str] = []
        if self.namespaces:
            parts.append(f"namespaces={list(self.namespaces)!r}")
        if self.labels:
            parts.append(f"labels={[str(s) for s in self.labels]!r}")
        if self.fields:
            parts.append(f"fields={[str(s) for s in self.fields]!r}")
        if self.hosts:
            parts.append(f"hosts={[list(h) for h in self.hosts]!r}")
        return parts


class Views(Closing):
    """:meth:`copy` for observers: a view that shares its parent's source (watch, poll,
    client) and narrows its :class:`ContainerFilter`. A view's ``close`` ends only its
    own runs (``_is_copy``); closing the original observer ends them all."""

    filter: ContainerFilter
    _closed: threading.Event
    _is_copy: bool = False

    def copy(
        self,
        namespace: str | None = None,
        label_selector: SelectorArg = None,
        field_selector: SelectorArg = None,
    ) -> Self:
        """This observer further restricted (AND) by these constraints; opens nothing."""
        view = copy.copy(self)
        view.filter = self.filter.narrow(namespace, label_selector, field_selector)
        view._closed = threading.Event()
        view._is_copy = True
        return view
