"""Who may talk to the agent over TCP: TLS with certificates made in the test
(openssl CLI), bearer tokens (full and read-only), client certificates, and
plain TCP only with --insecure. Health checks need no token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.agent_env import AgentProcess, Collector, make_certs, wait_until
from syshub.client import AgentError

pytestmark = pytest.mark.bpf

FULL, READ = "full-token-0123456789", "read-token-9876543210"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_agent(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]
) -> Iterator[tuple[AgentProcess, str]]:
    d = tmp_path_factory.mktemp("tls")
    (d / "full").write_text(f"# operators\n{FULL}\n")
    (d / "read").write_text(f"{READ}\n")
    a = AgentProcess(
        d,
        [
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            str(pki["server_cert"]),
            "--tls-key",
            str(pki["server_key"]),
            "--token-file",
            str(d / "full"),
            "--read-token-file",
            str(d / "read"),
        ],
        node="tls-node",
    ).start()
    try:
        yield a, f"127.0.0.1:{a.tcp_port()}"
    finally:
        assert a.stop() == 0, a.logs()


MANIFEST = """apiVersion: syshub.io/v1alpha1
kind: Trace
metadata: {name: sec, namespace: default}
spec: {syscalls: [getppid], hostSelector: [no-such-container-here]}
"""


def test_token_auth_over_tls(tls_agent: tuple[AgentProcess, str], pki: dict[str, Path]) -> None:
    agent, addr = tls_agent
    ca = str(pki["ca"])
    full = agent.client(addr, tls_ca=ca, token=FULL)
    assert full.list_traces() == []
    with pytest.raises(AgentError, match="UNAUTHENTICATED"):
        agent.client(addr, tls_ca=ca).list_traces()
    with pytest.raises(AgentError, match="UNAUTHENTICATED"):
        agent.client(addr, tls_ca=ca, token="wrong").list_traces()
    with pytest.raises(AgentError, match="UNAUTHENTICATED"):
        list(agent.client(addr, tls_ca=ca, token="wrong").watch("sec"))
    reader = agent.client(addr, tls_ca=ca, token=READ)
    with pytest.raises(AgentError, match="PERMISSION_DENIED"):
        reader.create_trace(MANIFEST)
    info = full.create_trace(MANIFEST, wait_applied=5)
    assert info.node == "tls-node"
    assert [t.name for t in reader.list_traces()] == ["sec"]
    with pytest.raises(AgentError, match="PERMISSION_DENIED"):
        reader.delete_trace("sec")
    stream = Collector(reader, "sec")  # a read-only token may watch, over TLS
    assert wait_until(lambda: len(full.stats("sec").streams) == 1)
    assert full.delete_trace("sec").state == "Complete"
    stream.join()
    assert stream.final is not None and stream.final.end_reason == "trace ended"
    assert stream.final.node == "tls-node"
    # health needs no token; the unix socket needs none either
    assert agent.health(addr, tls_ca=ca) == "SERVING"
    assert agent.client().list_traces() == []


def test_tls_is_required_and_checked(
    tls_agent: tuple[AgentProcess, str], pki: dict[str, Path]
) -> None:
    agent, addr = tls_agent
    with pytest.raises(AgentError, match="UNAVAILABLE"):
        agent.client(addr, insecure=True, token=FULL, timeout=10).list_traces()
    with pytest.raises(AgentError, match="UNAVAILABLE"):  # server cert not from a known CA
        agent.client(addr, token=FULL, timeout=10).list_traces()


def test_client_certificates(tmp_path: Path, pki: dict[str, Path]) -> None:
    a = AgentProcess(
        tmp_path,
        [
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            str(pki["server_cert"]),
            "--tls-key",
            str(pki["server_key"]),
            "--tls-client-ca",
            str(pki["ca"]),
        ],
        node="mtls",
    ).start()
    try:
        addr = f"127.0.0.1:{a.tcp_port()}"
        ca = str(pki["ca"])
        with pytest.raises(AgentError, match="UNAVAILABLE"):
            a.client(addr, tls_ca=ca, timeout=10).list_traces()
        ok = a.client(
            addr, tls_ca=ca, tls_cert=str(pki["client_cert"]), tls_key=str(pki["client_key"])
        )
        assert ok.list_traces() == []
    finally:
        assert a.stop() == 0, a.logs()


def test_plain_tcp_needs_insecure(tmp_path: Path) -> None:
    refused = AgentProcess(tmp_path, ["--listen", "127.0.0.1:0"], node="plain")
    cmd = refused.command()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--insecure" in out.stderr and "Traceback" not in out.stderr
    assert not refused.socket.exists()
    a = AgentProcess(tmp_path, ["--listen", "127.0.0.1:0", "--insecure"], node="plain").start()
    try:
        addr = f"127.0.0.1:{a.tcp_port()}"
        assert a.client(addr, insecure=True).list_traces() == []
        assert any(r.get("level") == "warning" and "insecure" in r["msg"] for r in a.log_records())
    finally:
        assert a.stop() == 0, a.logs()


def test_cli_over_tls_with_a_token(
    tls_agent: tuple[AgentProcess, str], pki: dict[str, Path]
) -> None:
    agent, addr = tls_agent
    token = agent.workdir / "cli-token"
    token.write_text(READ + "\n")
    base = [sys.executable, "-m", "syshub.cli", "traces", "list", "--agent", addr]
    ok = subprocess.run(
        [*base, "--tls-ca", str(pki["ca"]), "--token-file", str(token)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == [
        "NODE",
        "NAMESPACE",
        "NAME",
        "STATE",
        "SYSCALLS",
        "MATCHED",
        "DROPPED",
    ]
    refused = subprocess.run(
        [*base, "--tls-ca", str(pki["ca"])], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
