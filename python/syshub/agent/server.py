"""The node agent: one Hub behind the ``syshub.v1.Agent`` gRPC service, on a
unix socket (root only, mode 0600) and/or TCP (TLS; token or client
certificate authentication; plain only with ``insecure``), with gRPC health
checking and server reflection.

Stopping (SIGTERM/SIGINT, :meth:`Agent.stop`): health turns NOT_SERVING, the
servers refuse new calls, components stop, the Hub deletes every trace (what
the kernel emitted is routed first), every stream sends what it holds and
then its final counters, the servers end, the socket file is removed. Nothing
is pinned in the kernel: a SIGKILLed agent leaves no BPF object behind."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from syshub.agent.auth import TokenAuth, server_credentials
from syshub.agent.components import Component, configured_components
from syshub.agent.config import AgentConfig, AgentConfigError, parse_hostport
from syshub.agent.service import SERVICE, AgentService
from syshub.agent.streams import StreamRegistry, StreamStats
from syshub.agent.trace_store import TraceStore
from syshub.agent.traces import TraceRegistry
from syshub.hub import Hub, HubConfig
from syshub.topology import Observer

log = logging.getLogger("syshub.agent")

#: gRPC calls that are not streams, served at once (next to max_streams).
UNARY_WORKERS: Final = 8


class Agent:
    """``Agent(config).run()``: serve until SIGTERM/SIGINT."""

    def __init__(
        self, config: AgentConfig, observer: Observer | None = None, hub: Hub | None = None
    ) -> None:
        """``observer``: the Hub's topology (default: as the config selects);
        ``hub``: a Hub to serve instead of one built from the config (tests)."""
        self.config = config
        self.node = config.node_name
        self.hub = hub or Hub(
            HubConfig(
                alt_root=config.alt_root,
                cri_endpoint=config.cri_endpoint,
                k8s_endpoint=config.k8s_endpoint,
                k8s_namespace=config.k8s_namespace,
                ring_bytes=config.ring_bytes,
                poll_ms=config.poll_ms,
                node_name=config.node_name,
                tracepoint_syscalls=config.tracepoint_syscalls,
                max_filter_keys=config.max_filter_keys,
            ),
            observer=observer,
        )
        self.traces = TraceRegistry(
            self.hub, TraceStore(config.state_dir) if config.state_dir else None
        )
        self._streams = StreamRegistry(config.max_streams)
        self.service = AgentService(
            self.hub,
            self.traces,
            self._streams,
            self.node,
            config.stream_queue,
            config.max_batch,
        )
        self.service.rust_encoding = not config.python_encoding
        self.health = health.HealthServicer()
        self.components: list[Component] = []
        self._servers: list[grpc.Server] = []
        self._pools: list[ThreadPoolExecutor] = []
        self._socket_path: str | None = None
        self.tcp_port: int | None = None
        """The TCP port bound (useful with ``listen: host:0``)."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def add_component(self, component: Component) -> None:
        """Run ``component`` with the agent (call before :meth:`start`)."""
        self.components.append(component)

    def streams(self) -> list[StreamStats]:
        """Counters of every open Watch stream."""
        return [s.stats() for s in self._streams.streams()]

    # lifecycle -------------------------------------------------------------
    def start(self) -> Agent:
        """Load the probe, start components, then listen. On failure, what
        was started is stopped again and the error raised."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        try:
            self.hub.start()
            self.traces.resume()  # the traces created through the API before a restart
            self.components = [*self.components, *configured_components(self)]
            for c in self.components:
                c.start(self)
                where = getattr(getattr(c, "server", None), "url", None)  # e.g. /metrics
                log.info("component started", extra={"component": c.name, "url": where})
                snapshot = getattr(c, "snapshot", None)
                if c.name == "metrics" and callable(snapshot):
                    self.service.metrics_snapshot = snapshot
            self._serve()
        except BaseException:
            self.stop()
            raise
        for name in ("", SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "agent serving",
            extra={
                "node": self.node,
                "socket": self._socket_path,
                "tcp_port": self.tcp_port,
                "tls": self.config.tls,
            },
        )
        return self

    def _new_server(self, interceptors: list[Any]) -> grpc.Server:
        workers = self.config.max_streams + UNARY_WORKERS
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syshub-grpc")
        self._pools.append(pool)
        server = grpc.server(
            pool,
            interceptors=interceptors,
            maximum_concurrent_rpcs=workers,
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers((self.service.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        self._servers.append(server)
        return server

    def _serve(self) -> None:
        cfg = self.config
        if cfg.socket:
            path = os.path.abspath(cfg.socket)
            _prepare_socket_path(path)
            server = self._new_server([])
            old = os.umask(0o177)  # the socket is created 0600
            try:
                server.add_insecure_port(f"unix:{path}")
                self._socket_path = path
                server.start()
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
        if cfg.listen:
            host, port = parse_hostport(cfg.listen, "listen")
            auth = TokenAuth.of(cfg)
            server = self._new_server([auth] if auth else [])
            creds = server_credentials(cfg)
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            try:
                if creds is None:
                    bound = server.add_insecure_port(address)
                else:
                    bound = server.add_secure_port(address, creds)
            except RuntimeError as e:
                raise AgentConfigError(f"listen: cannot bind {cfg.listen}: {e}") from None
            if bound == 0:
                raise AgentConfigError(f"listen: cannot bind {cfg.listen} (in use?)")
            self.tcp_port = bound
            server.start()
            if creds is None:
                log.warning(
                    "plain TCP (--insecure): no encryption, no authentication",
                    extra={"listen": cfg.listen},
                )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`request_stop`; True if it was requested."""
        return self._stop.wait(timeout)

    def request_stop(self, reason: str = "requested") -> None:
        log.info("agent stopping", extra={"reason": reason})
        self._stop.set()

    def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, stop (from the main thread)."""

        def on_signal(signum: int, _frame: object) -> None:
            self.request_stop(signal.Signals(signum).name)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
            for s, h in old.items():
                signal.signal(s, h)

    def stop(self) -> None:
        """Stop everything (idempotent). New calls are refused at once (and the
        socket file goes); the Hub deletes every trace, routing what the kernel
        emitted; streams send what they hold, then their final counters;
        streams still not done after ``shutdown_grace`` are cancelled."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        grace = self.config.shutdown_grace
        self.health.enter_graceful_shutdown()
        self.service.closing = True
        if self._socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._socket_path)  # no new clients from here on
        self._streams.stop_all("agent stopping")
        for c in reversed(self.components):
            try:
                c.stop()
            except Exception:
                log.exception("component failed to stop", extra={"component": c.name})
        self.hub.stop()  # deletes every trace; every subscription closes once routed
        if not self._streams.wait_empty(grace):
            log.warning("streams cancelled after the grace", extra={"streams": len(self._streams)})
        for ev in [s.stop(1.0) for s in self._servers]:
            ev.wait(5.0)
        for pool in self._pools:
            pool.shutdown(wait=True)
        log.info("agent stopped", extra={"node": self.node})


def _prepare_socket_path(path: str) -> None:
    """Create the socket's directory; remove a stale socket; refuse a live one."""
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AgentConfigError(f"socket: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left by a killed agent
        return
    finally:
        probe.close()
    raise AgentConfigError(f"socket: {path}: another agent is listening there")
