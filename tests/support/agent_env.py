"""The node agent as a real subprocess for integration tests, a traced workload
in its own pid namespace, certificates made with the openssl CLI, and the
kernel objects (bpftool) a process holds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from syshub.client import AgentClient
from syshub.nsproc import NamespacedProcess

START_TIMEOUT = 30.0


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


@dataclass
class AgentProcess:
    """``syshub agent`` on a socket in ``workdir`` (and TCP when ``args`` say so)."""

    workdir: Path
    args: list[str] = field(default_factory=list)
    node: str = "node-a"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / f"{self.node}.sock"

    @property
    def target(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.node}.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "syshub.cli",
            "agent",
            "--socket",
            str(self.socket),
            "--node-name",
            self.node,
            "--ring-bytes",
            "16M",
            "--state-dir",
            str(self.workdir / f"{self.node}.state"),
            *self.args,
        ]

    def start(self, wait: bool = True) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYSHUB_AGENT_")}
        env.update(self.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stderr=log, stdout=log, env=env)
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self) -> None:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.logs()}")
            if self.socket.exists() and self.health(timeout=1.0) == "SERVING":
                return
            time.sleep(0.05)
        raise AssertionError(f"agent not serving after {START_TIMEOUT} s:\n{self.logs()}")

    def health(self, target: str | None = None, timeout: float = 2.0, **kw: Any) -> str:
        ep = AgentClient(target or self.target, **kw).endpoint
        with ep.channel() as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.RpcError as e:
                return f"error {e.code().name}"
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def client(self, target: str | None = None, **kw: Any) -> AgentClient:
        return AgentClient(target or self.target, **kw)

    def logs(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def tcp_port(self) -> int:
        """The TCP port the agent bound (``--listen 127.0.0.1:0``)."""
        for r in self.log_records():
            if r.get("msg") == "agent serving" and r.get("tcp_port"):
                return int(r["tcp_port"])
        raise AssertionError(f"the agent logged no TCP port:\n{self.logs()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


@contextlib.contextmanager
def running_agent(workdir: Path, *args: str, node: str = "node-a") -> Iterator[AgentProcess]:
    agent = AgentProcess(workdir, list(args), node).start()
    try:
        yield agent
    finally:
        agent.stop()


class Workload:
    """``known_calls wait`` under a unique name in its own pid namespace: one
    getppid per byte written to it. The HostObserver names the namespace
    after the program, so a Trace selects it with ``hostSelector: [name]``."""

    def __init__(self, known_calls: Path, workdir: Path) -> None:
        self.name = "agt" + uuid.uuid4().hex[:8]
        self.path = workdir / self.name
        shutil.copy(known_calls, self.path)
        self.proc = NamespacedProcess([str(self.path), "wait"], stdin=-1)
        self.proc.release()
        self.pid_ns = self.proc.pid_ns

    def calls(self, n: int) -> None:
        stdin = self.proc._relay.stdin
        assert stdin is not None
        stdin.write(b"x" * n)
        stdin.flush()

    def close(self) -> None:
        stdin = self.proc._relay.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)
        self.proc.close()

    def manifest(self, trace: str, syscalls: str = "getppid", extra: str = "") -> str:
        return (
            "apiVersion: syshub.io/v1alpha1\nkind: Trace\n"
            f"metadata: {{name: {trace}, namespace: default}}\n"
            f"spec:\n  syscalls: [{syscalls}]\n  hostSelector: [{self.name}]\n{extra}"
        )


def seen_by_host_observer(name: str) -> bool:
    """Whether /proc shows a process named ``name`` (the agent's observer polls it)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    return True
    return False


# -- kernel objects ------------------------------------------------------------
def _bpftool(*args: str) -> list[dict[str, Any]]:
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out = subprocess.run([tool, "-j", *args], check=True, capture_output=True, timeout=30)
    data = json.loads(out.stdout or b"[]")
    return data if isinstance(data, list) else []


@dataclass(frozen=True)
class BpfObjects:
    progs: frozenset[int]
    maps: frozenset[int]
    links: frozenset[int]

    def __bool__(self) -> bool:
        return bool(self.progs or self.maps or self.links)


def held_objects(pid: int) -> BpfObjects:
    """The BPF programs, maps and links process ``pid`` holds (its descriptors'
    ``fdinfo``: ``prog_id``, ``map_id``, ``link_id``)."""
    found: dict[str, set[int]] = {"prog_id": set(), "map_id": set(), "link_id": set()}
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            if not os.readlink(fd_dir / fd).startswith("anon_inode:bpf"):
                continue
            for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in found and value.strip().isdigit():
                    found[key].add(int(value))
    return BpfObjects(
        frozenset(found["prog_id"]), frozenset(found["map_id"]), frozenset(found["link_id"])
    )


def prog_names() -> dict[int, str]:
    """bpftool's program list: id -> name."""
    return {int(p["id"]): str(p.get("name", "")) for p in _bpftool("prog", "show")}


def live_objects() -> BpfObjects:
    """Every program, map and link id the kernel has now."""
    return BpfObjects(
        frozenset(int(p["id"]) for p in _bpftool("prog", "show")),
        frozenset(int(m["id"]) for m in _bpftool("map", "show")),
        frozenset(int(li["id"]) for li in _bpftool("link", "show")),
    )


# -- certificates ---------------------------------------------------------------
def make_certs(workdir: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client
    certificate, with the openssl CLI."""
    d = workdir / "pki"
    d.mkdir(exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "1",
        "-subj", "/CN=syshub-test-ca")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
            "-subj", f"/CN=syshub-test-{name}")  # fmt: skip
        ssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / f"{name}.pem"),
            "-days", "1", "-extfile", str(d / f"{name}.ext"))  # fmt: skip
    return {
        "ca": d / "ca.pem",
        "server_cert": d / "server.pem",
        "server_key": d / "server.key",
        "client_cert": d / "client.pem",
        "client_key": d / "client.key",
    }


class Collector:
    """A Watch stream read on its own thread (``cancel()`` ends it)."""

    def __init__(self, client: AgentClient, name: str | None = None, **kw: Any) -> None:
        from syshub.client.messages import WatchBatch, watch_batch

        self.batches: list[WatchBatch] = []
        self.error: Exception | None = None
        self.call = client.watch_raw(name, **kw)
        self._parse = watch_batch
        self._agent = client.endpoint.target
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for msg in self.call:
                self.batches.append(self._parse(msg, True, self._agent))
        except Exception as e:
            self.error = e

    @property
    def events(self) -> list[dict[str, Any]]:
        return [ev for b in list(self.batches) for ev in b.events]

    @property
    def final(self) -> Any:
        b = list(self.batches)
        return b[-1] if b and b[-1].final else None

    def wait_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        assert wait_until(lambda: len(self.events) >= n or self.error is not None, timeout), (
            f"only {len(self.events)} of {n} events"
        )
        return self.events

    def join(self, timeout: float = 10.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"

    def cancel(self) -> None:
        self.call.cancel()
