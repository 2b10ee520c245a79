"""Former name of :mod:`syshub.topology.model`, kept for existing imports."""

from syshub.topology.model import (
    Container,
    ContainerEvent,
    ContainerEventKind,
    EmitFn,
    Observer,
    SyncedFn,
)

__all__ = ["Container", "ContainerEvent", "ContainerEventKind", "EmitFn", "Observer", "SyncedFn"]
