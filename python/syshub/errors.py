"""One exception hierarchy for syshub: every error a user can meet derives from
:class:`SyshubError` (and, where it fits, from the matching builtin such as
``ValueError`` or ``PermissionError`` so generic handlers keep working)."""

from __future__ import annotations


class SyshubError(Exception):
    """Base of every syshub error."""


class ProbeError(SyshubError):
    """The kernel probe could not be loaded, attached or read."""


class SyscallNameError(SyshubError, ValueError):
    """An unknown syscall name or number; the message suggests close matches."""


class TraceSpecError(SyshubError, ValueError):
    """A Trace manifest or spec is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class SelectorError(TraceSpecError):
    """A label or field selector is malformed."""


class TopologyError(SyshubError):
    """An observer could not reach its source (CRI socket, Kubernetes API)."""


class CriError(TopologyError):
    """The CRI runtime endpoint is missing, not a socket, or answered an error."""


class KubernetesError(TopologyError):
    """The Kubernetes API is unreachable or the kubeconfig is unusable."""


class HubError(SyshubError):
    """A hub operation failed (unknown job, hub not running, ...)."""
