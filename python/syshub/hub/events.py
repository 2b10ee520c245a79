"""Events as subscribers see them: the kernel event plus its container."""

from __future__ import annotations

from typing import Any, Literal

from syshub.topology import Container

#: Event document styles: ours (the default) and swoll's TraceEvent JSON.
EventStyle = Literal["syshub", "swoll"]


class TraceEvent(tuple[Any, "Container | None"]):
    """An event as subscribers see it: the kernel event plus its container.
    Immutable (a tuple underneath: cheap to build on the reader path); every
    subscriber of an event gets the same object. Other attributes come from
    the kernel event (``syscall``, ``pid_ns``, ``args``, ...)."""

    __slots__ = ()

    def __new__(cls, event: Any, container: Container | None) -> TraceEvent:
        return tuple.__new__(cls, (event, container))

    @property
    def event(self) -> Any:
        return self[0]

    @property
    def container(self) -> Container | None:
        return self[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self[0], name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TraceEvent is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TraceEvent is immutable")

    @property
    def path(self) -> tuple[str, str, str, str]:
        """(namespace, pod, container, syscall) for path subscriptions."""
        c = self[1]
        name = self[0].syscall
        if c is None:
            return ("", "", "", name)
        return (c.namespace, c.pod, c.name, name)

    def to_dict(self, style: EventStyle = "syshub") -> dict[str, Any]:
        """The one event document (the CLI's JSON lines, the agent's streams):
        the kernel event's fields plus ``container`` (null when unknown).
        ``style="swoll"``: swoll's TraceEvent document instead
        (:mod:`syshub.hub.swoll_event`)."""
        if style != "syshub":
            if style != "swoll":
                raise ValueError(f"unknown event style {style!r} (expected 'syshub' or 'swoll')")
            from syshub.hub.swoll_event import swoll_document

            return swoll_document(self)
        d: dict[str, Any] = self[0].to_dict()
        c = self[1]
        d["container"] = c.to_dict() if c is not None else None
        return d

    def to_text(self) -> str:
        """strace-style line, control characters escaped."""
        text: str = self[0].to_text()
        return text

    def __repr__(self) -> str:
        return f"<TraceEvent {self[0].to_text()} container={self[1]}>"
