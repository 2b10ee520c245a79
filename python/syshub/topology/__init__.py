"""Topology: which containers (and pods) own which kernel pid namespaces."""

from syshub.topology.base import Container, ContainerEvent, ContainerEventKind, Observer

__all__ = ["Container", "ContainerEvent", "ContainerEventKind", "Observer"]
