"""CriObserver: the containers of a CRI runtime (containerd, CRI-O) without Kubernetes.

Running containers become :class:`~syshub.topology.Container` values (host pid of the
container init and the inode of its pid namespace, see :mod:`syshub.topology.resolve`);
starts and stops are found by polling. Pod, namespace and pod uid come from the labels
the kubelet sets on containers and sandboxes, when present.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from syshub.errors import CriError
from syshub.topology.filter import ContainerFilter, Views
from syshub.topology.model import Container, ContainerEvent, ContainerEventKind, EmitFn, SyncedFn
from syshub.topology.resolve import CriPodSandbox, CriReader, PodRef, Resolver

log = logging.getLogger("syshub.topology.cri")

_EXTRA: Final = "pip install 'syshub[cri]'"


@runtime_checkable
class CriRuntime(CriReader, Protocol):
    """What :class:`CriObserver` needs from a client (a CriClient; tests pass a fake)."""

    def list_pod_sandboxes(self) -> Sequence[CriPodSandbox]: ...


def new_client(endpoint: str, timeout: float = 5.0) -> CriRuntime:
    """A :class:`~syshub.topology.cri.client.CriClient` (not connected yet).

    Raises :class:`~syshub.errors.CriError` naming the extra to install when ``grpcio``
    or ``protobuf`` is missing or unusable.
    """
    try:
        from syshub.topology.cri.client import CriClient
    except ImportError as exc:
        missing = exc.name or "grpcio/protobuf"
        raise CriError(f"CRI support needs the `{missing}` package: {_EXTRA}") from None
    except Exception as exc:  # e.g. protobuf older than the generated code
        text = " ".join(str(exc).split())
        raise CriError(f"CRI support cannot load its gRPC code ({text}): {_EXTRA}") from None
    return CriClient(endpoint, timeout=timeout)


class _Source:
    """State shared by an observer and its copies: one client, one poll, one cache."""

    def __init__(self, client: CriRuntime, alt_root: str, owns_client: bool, node: str) -> None:
        self.client = client
        self.node = node
        self.resolver = Resolver(client.container_status, alt_root)
        self.owns_client = owns_client
        self.lock = threading.Lock()
        self.connected = False
        self.resolved: dict[str, Container] = {}
        self.gone: set[str] = set()
        self.sandboxes: dict[str, CriPodSandbox] = {}
        self.snapshot_at = 0.0
        self.last: list[Container] | None = None
        self.closed = threading.Event()

    def connect(self) -> None:
        with self.lock:
            if not self.connected:
                self.client.connect()
                self.connected = True

    def snapshot(self, max_age: float = 0.0) -> list[Container]:
        """Resolved running containers; reuses a snapshot younger than ``max_age``."""
        if not self.connected:
            self.connect()
        with self.lock:
            now = time.monotonic()
            if self.last is not None and now - self.snapshot_at < max_age:
                return self.last
            running = self.client.list_containers(state_running_only=True)
            ids = {c.id for c in running}
            self.resolved = {k: v for k, v in self.resolved.items() if k in ids}
            self.gone &= ids
            if any(c.pod_sandbox_id not in self.sandboxes for c in running):
                self.sandboxes = {p.id: p for p in self.client.list_pod_sandboxes()}
            out: list[Container] = []
            for c in running:
                if c.id in self.gone:
                    continue
                value = self.resolved.get(c.id)
                if value is None:
                    pod = PodRef.from_cri(c.labels, self.sandboxes.get(c.pod_sandbox_id), self.node)
                    value = self.resolver.resolve(c, pod)
                    if value is None:
                        self.gone.add(c.id)
                        continue
                    self.resolved[c.id] = value
                out.append(value)
            self.last = out
            self.snapshot_at = time.monotonic()
            return out

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            self.connected = False
            self.last = None
            self.resolved.clear()
        if self.owns_client:
            self.client.close()


class CriObserver(Views):
    """Containers of a CRI runtime (no Kubernetes needed), found by polling.

    ``containers()`` lists running containers matching the observer's
    restrictions; ``run(emit, stop, on_synced)`` emits START for each, calls
    ``on_synced()``, then polls every ``poll_interval`` seconds and emits STOP/START
    for changes (a restarted container has a new id: STOP old, then START new). A
    container whose process has already exited is skipped. Copies share the client
    and the poll (one ListContainers per interval however many copies run).

    Selectors: see :mod:`syshub.topology.filter`. Labels are the pod's (sandbox)
    labels overlaid with the container's; fields are those of
    :func:`~syshub.topology.filter.container_fields`. ``node`` fills
    ``Container.node`` (the runtime does not know the Kubernetes node name).
    """

    _MAX_BACKOFF: Final = 10.0

    def __init__(
        self,
        endpoint: str,
        alt_root: str = "/",
        namespace: str | None = None,
        label_selector: object | None = None,
        poll_interval: float = 0.5,
        client: CriRuntime | None = None,
        field_selector: object | None = None,
        node: str = "",
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self.endpoint = endpoint
        self.alt_root = alt_root
        self.poll_interval = poll_interval
        self.filter = ContainerFilter().narrow(namespace, label_selector, field_selector)
        owns = client is None
        runtime = client if client is not None else new_client(endpoint)
        self._source = _Source(runtime, alt_root, owns_client=owns, node=node)
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"CriObserver({self.endpoint!r}, {', '.join(self.filter.describe())})"

    @property
    def client(self) -> CriRuntime:
        return self._source.client

    def connect(self) -> None:
        """Connect to the runtime; raises :class:`CriError` with a clear message."""
        self._source.connect()

    def containers(self) -> list[Container]:
        """Running containers that match this observer (fresh from the runtime)."""
        return self.filter.select(self._source.snapshot(max_age=0.0))

    def close(self) -> None:
        """Stop ``run``. Closing the original observer also stops its copies and
        closes the client it created (a client passed in is left to the caller)."""
        self._closed.set()
        if not self._is_copy:
            self._source.close()

    # ------------------------------------------------------------------ run loop

    def _done(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set() or self._source.closed.is_set()

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._done(stop):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 0.1))

    @staticmethod
    def _emit(emit: EmitFn, kind: ContainerEventKind, c: Container) -> None:
        try:
            emit(ContainerEvent(kind, c))
        except Exception:
            log.exception("CRI observer: emit(%s %s) raised; continuing", kind.value, c.id[:13])

    def _poll(self, stop: threading.Event, failures: int) -> dict[str, Container] | None:
        """One poll: the selected containers by id, or None after a logged failure."""
        try:
            snapshot = self._source.snapshot(max_age=self.poll_interval / 2)
        except Exception as exc:
            delay = min(self._MAX_BACKOFF, self.poll_interval * 2 ** min(failures + 1, 8))
            if isinstance(exc, CriError | OSError):
                log.warning("CRI observer: %s (retry %d in %.1fs)", exc, failures + 1, delay)
            else:
                log.exception("CRI observer: unexpected error (retry %d)", failures + 1)
            self._sleep(stop, delay)
            return None
        return {c.id: c for c in self.filter.select(snapshot)}

    def run(self, emit: EmitFn, stop: threading.Event, on_synced: SyncedFn | None = None) -> None:
        """Emit START for current containers, call ``on_synced``, then follow changes
        until ``stop``.

        Errors talking to the runtime are logged and retried with exponential
        backoff (up to 10 s); they never propagate (``on_synced`` then waits for the
        first successful poll).
        """
        known: dict[str, Container] = {}
        failures = 0
        while not self._done(stop):
            current = self._poll(stop, failures)
            if current is None:
                failures += 1
                continue
            if failures:
                log.info("CRI observer: %s reachable again", self.endpoint)
                failures = 0
            for cid in [k for k in known if k not in current]:
                self._emit(emit, ContainerEventKind.STOP, known.pop(cid))
            for cid, c in current.items():
                if cid not in known:
                    known[cid] = c
                    self._emit(emit, ContainerEventKind.START, c)
            if on_synced is not None:
                on_synced()
                on_synced = None
            self._sleep(stop, self.poll_interval)
