"""``/metrics`` over HTTP (a small threaded WSGI server) and the agent's metrics
component.

:func:`serve_metrics` serves one :class:`ContainerMetrics` (plus a Hub's
health) at ``host:port``; :func:`component` is what ``syshub agent
--metrics-port`` loads: it opens the kernel metrics program, follows the
agent Hub's topology for labels, serves ``/metrics`` and offers
``snapshot()`` to the agent's gRPC Metrics method."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from syshub.metrics.exposition import CONTENT_TYPE, MetricsExporter
from syshub.metrics.kernel import DEFAULT_MAX_ENTRIES, Metrics, Mode
from syshub.metrics.labels import ContainerMetrics
from syshub.metrics.prometheus import StatsSource, SyscallCollector


def parse_addr(addr: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``host:port``, ``:port``, ``port`` or ``[v6]:port`` -> (host, port)."""
    text = addr.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        n = int(port)
    except ValueError:
        raise ValueError(f"metrics address must be HOST:PORT, got {addr!r}") from None
    if not 0 <= n <= 65535:
        raise ValueError(f"metrics port must be in 0..65535, got {n}")
    return host, n


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class MetricsServer:
    """A running ``/metrics`` endpoint; :attr:`port` is the bound port (useful
    with port 0). :meth:`close` stops it."""

    def __init__(self, host: str, port: int, exporter: MetricsExporter) -> None:
        self.exporter = exporter
        cls = _Server6 if ":" in host else _Server
        self._server: WSGIServer = make_server(host, port, self._app, cls, _Quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="syshub-metrics-http", daemon=True
        )
        self._thread.start()
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def collector(self) -> SyscallCollector:
        return self.exporter.collector

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics\n"]
        try:
            body = self.exporter.render()
        except Exception as e:  # intent: one line to the scraper, never a traceback
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"syshub: metrics unavailable: {e}\n".encode()]
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(
    addr: str,
    source: ContainerMetrics,
    *,
    hub: StatsSource | None = None,
    streams: Callable[[], Iterable[Any]] | None = None,
    swoll_names: bool = False,
) -> MetricsServer:
    """Serve ``/metrics`` for ``source`` at ``addr`` (``host:port``) in a
    background thread. OSError when the address cannot be bound."""
    host, port = parse_addr(addr)
    exporter = MetricsExporter(source, hub=hub, streams=streams, swoll_names=swoll_names)
    return MetricsServer(host, port, exporter)


class MetricsComponent:
    """The agent's ``/metrics`` component (``name == "metrics"``)."""

    name = "metrics"

    def __init__(
        self,
        addr: str,
        *,
        mode: Mode = "node",
        swoll_names: bool = False,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        latency: bool = True,
    ) -> None:
        self.addr = addr
        self.mode: Mode = mode
        self.latency = latency
        self.swoll_names = swoll_names
        self.max_entries = max_entries
        self.metrics: Metrics | None = None
        self.labels: ContainerMetrics | None = None
        self.server: MetricsServer | None = None

    def start(self, agent: Any) -> None:
        hub = agent.hub
        node = str(getattr(agent.config, "node_name", None) or "") or None
        self.metrics = Metrics(self.mode, max_entries=self.max_entries, latency=self.latency)
        try:
            self.labels = ContainerMetrics(self.metrics, hub, node=node).start()
            streams = getattr(agent, "streams", None)
            self.server = serve_metrics(
                self.addr,
                self.labels,
                hub=hub,
                streams=streams if callable(streams) else None,
                swoll_names=self.swoll_names,
            )
        except BaseException:
            self.stop()
            raise

    def snapshot(self) -> Mapping[str, Any]:
        """One labelled report as a dict (the agent's Metrics method)."""
        if self.labels is None:
            raise RuntimeError("the metrics component is not started")
        return self.labels.report().to_dict()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.labels is not None:
            self.labels.stop()
            self.labels = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None


def component(agent: Any) -> MetricsComponent:
    """Build the metrics component from the agent's configuration:
    ``metrics_host``/``metrics_port`` (or ``metrics_addr``), ``metrics_mode``
    (``node`` | ``containers``), ``metrics_swoll``, ``metrics_latency``
    (default true: the duration histogram; false: counts and errnos only,
    the cheaper kernel path)."""
    cfg = agent.config
    addr = getattr(cfg, "metrics_addr", None)
    if not addr:
        addr = f"{getattr(cfg, 'metrics_host', '127.0.0.1')}:{cfg.metrics_port}"
    mode = str(getattr(cfg, "metrics_mode", "node") or "node")
    if mode not in ("node", "containers"):
        raise ValueError(f'metrics_mode must be "node" or "containers", got {mode!r}')
    return MetricsComponent(
        str(addr),
        mode=cast(Mode, mode),
        swoll_names=bool(getattr(cfg, "metrics_swoll", False)),
        latency=bool(cfg.metrics_latency),
    )
