"""The gRPC rows of the ``output`` scenario: ``syshub agent`` as a
subprocess (unix socket, and TCP with TLS and a bearer token), Watch
streams read by Python clients in this process (raw WatchResponse messages:
``records``, the probe's records that the client decodes into a Batch, or
``json``, JSON lines encoded in Rust by the agent), the traced loop in
its own pid namespace targeted with ``namespace_of``. Per stream: events
received, its final counters (matched = delivered + dropped + sampled_out),
and the agent's resident memory with the streams open."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benches.common import Check, Context
from benches.workload import Loop
from syshub.client.messages import records_of

START_TIMEOUT = 30.0
#: Events per WatchResponse the streams ask for (the agent's default is 4,096):
#: fewer messages, less per-message Python work on both sides.
MAX_BATCH = 16384
#: The streams' queue bound in events (the agent's default is 65,536): room for
#: a burst while the consumer CPU is taken by something else, as the kernel
#: ring (16 MiB, ~100 k getppid events) gives the in-process batch consumer.
QUEUE = 262144


def _ssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certs(d: Path) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    _ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "1",
         "-subj", "/CN=syshub-bench-ca")  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
         "-subj", "/CN=syshub-bench-server")  # fmt: skip
    _ssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.pem"),
         "-days", "1", "-extfile", str(d / "server.ext"))  # fmt: skip
    (d / "tokens").write_text("bench-token\n")
    return {
        "ca": str(d / "ca.pem"),
        "cert": str(d / "server.pem"),
        "key": str(d / "server.key"),
        "tokens": str(d / "tokens"),
    }


class Agent:
    """``syshub agent`` on a unix socket and on TLS TCP (127.0.0.1, any port)."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.certs = make_certs(d)
        self.socket = d / "agent.sock"
        self.log = d / "agent.log"
        cmd = [sys.executable, "-m", "syshub.cli", "agent", "--socket", str(self.socket),
               "--node-name", "bench", "--ring-bytes", "16M", "--listen", "127.0.0.1:0",
               "--tls-cert", self.certs["cert"], "--tls-key", self.certs["key"],
               "--token-file", self.certs["tokens"],
               # never the host's /var/lib/syshub: the bench's traces are its own
               "--state-dir", str(d / "state")]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYSHUB_AGENT_")}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        self.port = self._wait_serving()

    def _wait_serving(self) -> int:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.logs()[-2000:]}")
            for line in self.logs().splitlines():
                with contextlib.suppress(ValueError):
                    r = json.loads(line)
                    if r.get("msg") == "agent serving" and r.get("tcp_port"):
                        return int(r["tcp_port"])
            time.sleep(0.05)
        raise RuntimeError(f"agent not serving after {START_TIMEOUT} s: {self.logs()[-2000:]}")

    def logs(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""

    def client(self, transport: str) -> Any:
        from syshub.client import AgentClient

        if transport == "unix":
            return AgentClient(f"unix://{self.socket}")
        return AgentClient(f"127.0.0.1:{self.port}", tls_ca=self.certs["ca"], token="bench-token")

    def rss(self, field: str = "VmRSS") -> int:
        """Resident memory of the agent process (``VmHWM``: its peak since
        :meth:`reset_peak`), bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self) -> None:
        """Start the agent's peak resident memory (``VmHWM``) from now."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def running_agent() -> Iterator[Agent]:
    with tempfile.TemporaryDirectory(prefix="syshub-bench-agent-") as d:
        agent = Agent(Path(d))
        try:
            yield agent
        finally:
            agent.close()


class _Stream:
    """One Watch stream read on its own thread: events received, last counters."""

    def __init__(self, client: Any, name: str, fmt: str) -> None:
        self.call = client.watch_raw(name, format=fmt, max_batch=MAX_BATCH, queue=QUEUE)
        self.fmt = fmt
        self.last_seq = 0
        self.messages = 0
        self.received = 0
        self.bytes = 0
        self.counters: Any = None
        self.final = False
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        records = self.fmt == "records"
        try:
            for msg in self.call:
                self.messages += 1
                if records and msg.count:
                    # As the in-process batch consumer: the batch (each record
                    # validated by the decoder), its length and seq column.
                    rec = records_of(msg.batch)
                    self.received += len(rec)
                    self.last_seq = memoryview(rec.batch.column("seq"))[-1]
                    self.bytes += msg.ByteSize()
                else:
                    self.received += msg.count
                    self.bytes += msg.ByteSize()
                self.counters = msg.counters
                if msg.final:
                    self.final = True
        except Exception as e:  # a cancelled or failed stream: reported in the result
            self.error = f"{type(e).__name__}: {e}"


_runs = iter(range(1, 1 << 30))


def grpc_run(
    ctx: Context,
    agent: Agent,
    transport: str,
    clients: int,
    secs: float,
    label: str,
    fmt: str = "json",
) -> tuple[dict[str, Any], list[Check]]:
    """The loop traced by the agent, ``clients`` Watch streams over ``transport``."""
    control = agent.client("unix")
    name = f"bench-output-{next(_runs)}"
    checks: list[Check] = []
    with Loop(ctx, "getppid", secs=secs) as loop:
        manifest = (
            "apiVersion: syshub.io/v1alpha1\nkind: Trace\n"
            f"metadata: {{name: {name}, namespace: default}}\nspec:\n  syscalls: [getppid]\n"
        )
        control.create_trace(manifest, namespace_of=loop.pid, wait_applied=10)
        agent.reset_peak()
        rss0 = agent.rss()
        conns = [agent.client(transport) for _ in range(clients)]
        streams = [_Stream(c, name, fmt) for c in conns]
        end = time.monotonic() + 10
        while len(control.stats().streams) < clients and time.monotonic() < end:
            time.sleep(0.02)
        loop.start()
        report = loop.finish()
        rss1 = agent.rss()
        peak = agent.rss("VmHWM")
        control.delete_trace(name)
        for s in streams:
            s.thread.join(timeout=30)
        for c in conns:
            c.close()
    control.close()
    per = []
    for i, s in enumerate(streams):
        c = s.counters
        if c is None or not s.final:
            raise RuntimeError(f"{label}: stream {i} ended without its final counters ({s.error})")
        checks.append(
            Check(f"{label} stream {i}", c.matched, c.delivered, c.dropped, c.sampled_out)
        )
        checks.append(
            Check(f"{label} stream {i} received = delivered", c.delivered, s.received, 0, 0)
        )
        per.append(
            {
                "received": s.received,
                "bytes": s.bytes,
                "messages": s.messages,
                "dropped": c.dropped,
                "matched": c.matched,
            }
        )
    received = [p["received"] for p in per]
    m = {
        "variant": f"grpc {transport} {fmt}",
        "clients": clients,
        "loop_calls_per_s": report.calls_per_s,
        "matched": max(p["matched"] for p in per),
        "written": min(received),
        "kernel_dropped": 0,
        "queue_dropped": sum(p["dropped"] for p in per),
        "written_per_loop_s": min(received) / report.secs,
        "per_client_events_per_s": [r / report.secs for r in received],
        "total_events_per_s": sum(received) / report.secs,
        "rss_before": rss0,
        "rss_streams": rss1,
        "rss_peak": peak,
        # The peak with the streams open (the resident memory at the end can
        # be below the start once the allocator has given memory back).
        "rss_per_client": (max(peak, rss1) - rss0) / clients,
        "per_stream": per,
    }
    return m, checks
