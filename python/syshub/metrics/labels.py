"""Per-container metrics driven by topology: :class:`ContainerMetrics` follows
an observer (a Hub's, or one given) and

* in containers mode keeps the kernel's namespace set equal to the pid
  namespaces of the containers the observer reports;
* maps each pid namespace to its namespace / pod / container labels;
* prunes the series of a namespace once its last container stopped (and
  keeps pruning, for a while, what the namespace's last processes add while
  they exit).

It never runs Python per syscall: it works on container events and when a
report is asked for."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from syshub.errors import SyshubError
from syshub.metrics.kernel import Metrics, MetricsSnapshot
from syshub.metrics.report import MetricsReport, SeriesRow
from syshub.topology import Container, ContainerEvent, ContainerEventKind, Observer, Topology

#: Seconds during which series of a stopped namespace are still pruned.
PRUNE_WINDOW = 30.0


class HubLike(Protocol):
    """What this module uses of a :class:`~syshub.Hub`: its observer."""

    observer: Observer


class ContainerMetrics:
    """Labels and namespace set for a :class:`Metrics` from a topology source.

    ``source``: a Hub (a copy of its observer is run; the Hub is not
    changed), an :class:`~syshub.topology.Observer`, or None (no labels: every
    series is unlabelled; containers mode then counts only namespaces added
    by hand). ``node``: the node name reports carry (default: host name)."""

    def __init__(
        self,
        metrics: Metrics,
        source: HubLike | Observer | None = None,
        *,
        node: str | None = None,
        prune_window: float = PRUNE_WINDOW,
    ) -> None:
        self.metrics = metrics
        self.node = node if node is not None else socket.gethostname()
        self.topology = Topology()
        self.prune_window = prune_window
        if source is None or isinstance(source, Observer):
            self._observer: Observer | None = source
        else:
            self._observer = source.observer.copy()
        self._lock = threading.Lock()
        self._stopped: dict[int, float] = {}
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        """Namespace-set or prune operations the kernel refused (counted)."""
        self.pruned = 0
        """Series deleted because their namespace's containers stopped."""
        self.on_change: Callable[[ContainerEvent], None] | None = None

    # following the topology ------------------------------------------------
    def start(self) -> ContainerMetrics:
        """Connect the observer and follow it in a thread (no-op without one)."""
        obs = self._observer
        if obs is None:
            self._synced.set()
            return self
        if self._thread is not None:
            return self
        obs.connect()
        self._thread = threading.Thread(
            target=lambda: obs.run(self.apply, self._stop, self._synced.set),
            name="syshub-metrics-topology",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once the containers that existed at start are applied."""
        return self._synced.wait(timeout)

    def stop(self) -> None:
        """Stop following (the Metrics stays open: its owner closes it)."""
        self._stop.set()
        if self._observer is not None and self._thread is not None:
            self._observer.close()
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> ContainerMetrics:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def apply(self, ev: ContainerEvent) -> None:
        """One container START or STOP (the observer calls this)."""
        ns = ev.container.pid_ns
        self.topology.apply(ev)
        containers = self.metrics.mode == "containers"
        try:
            if ev.kind is ContainerEventKind.START:
                with self._lock:
                    self._stopped.pop(ns, None)
                if containers:
                    self.metrics.add_namespace(ns)
            elif not self.topology.containers_in(ns):
                with self._lock:
                    self._stopped[ns] = time.monotonic()
                if containers:
                    self.metrics.remove_namespace(ns)
                n = self.metrics.prune_namespace(ns)
                with self._lock:
                    self.pruned += n
        except (OSError, ValueError, SyshubError):
            with self._lock:
                self.errors += 1
        if self.on_change is not None:
            self.on_change(ev)

    def add_container(self, c: Container) -> None:
        """Announce a container by hand (no observer needed)."""
        self.apply(ContainerEvent(ContainerEventKind.START, c))

    def remove_container(self, c: Container) -> None:
        self.apply(ContainerEvent(ContainerEventKind.STOP, c))

    def container_of(self, pid_ns: int) -> Container | None:
        return self.topology.lookup_container(pid_ns)

    # reading -------------------------------------------------------------
    def _stopped_now(self) -> set[int]:
        now = time.monotonic()
        with self._lock:
            for ns, at in list(self._stopped.items()):
                if now - at > self.prune_window:
                    del self._stopped[ns]
            return set(self._stopped)

    def report(self, snapshot: MetricsSnapshot | None = None) -> MetricsReport:
        """Every series now, labelled; series of stopped namespaces are
        pruned from the kernel and left out."""
        snap = snapshot if snapshot is not None else self.metrics.snapshot()
        stopped = self._stopped_now()
        rows: list[SeriesRow] = []
        late: list[tuple[int, int, int]] = []
        labels: dict[int, tuple[str, str, str]] = {}
        for r in snap.rows:
            if r.pid_ns in stopped:
                late.append((r.pid_ns, r.nr, r.errno))
                continue
            lab = labels.get(r.pid_ns)
            if lab is None:
                c = self.topology.lookup_container(r.pid_ns)
                lab = (c.namespace, c.pod, c.name) if c is not None else ("", "", "")
                labels[r.pid_ns] = lab
            rows.append(
                SeriesRow(
                    lab[0],
                    lab[1],
                    lab[2],
                    r.pid_ns,
                    r.nr,
                    r.syscall,
                    r.klass,
                    r.group,
                    r.errno,
                    r.error,
                    r.count,
                    r.total_ns,
                    r.buckets,
                )
            )
        if late:
            try:
                n = self.metrics.remove_series(late)
            except (OSError, ValueError, SyshubError):
                n = 0
                self.errors += 1
            with self._lock:
                self.pruned += n
        return MetricsReport(
            node=self.node,
            mode=self.metrics.mode,
            taken_at=snap.taken_at,
            rows=tuple(rows),
            overflow=snap.overflow,
            nomem=snap.nomem,
            max_entries=snap.max_entries,
            read_seconds=snap.read_seconds,
            latency=snap.latency,
            untimed=snap.untimed,
        )
