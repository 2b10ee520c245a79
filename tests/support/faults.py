"""Fault injection for the reliability tests: containerd down and back (its
containers keep running under their shims), its socket hidden for a while."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from support.containerd import ContainerdEnv
from syshub.errors import CriError
from syshub.topology.cri.client import CriClient


def containerd_down(env: ContainerdEnv) -> None:
    """Stop the daemon only (SIGTERM, as a service manager restarting it
    would); shims and containers keep running."""
    assert env.proc is not None, "containerd is not running"
    env.proc.terminate()
    try:
        env.proc.wait(10)
    except subprocess.TimeoutExpired:
        env.proc.kill()
        env.proc.wait(5)


def containerd_up(env: ContainerdEnv, timeout: float = 30.0) -> None:
    """Start the daemon again on the same config, socket and state; the test
    client reconnects by itself (gRPC channels retry)."""
    log = env.log_path.open("ab")
    env.proc = subprocess.Popen(
        [shutil.which("containerd") or "containerd", "--config", str(env.config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the child has its own descriptor
    t0 = time.monotonic()
    while True:
        # A fresh client: the old channel may sit in gRPC's reconnect backoff.
        client = CriClient(env.endpoint, timeout=10.0)
        try:
            client.connect()
            break
        except CriError:
            client.close()
            if time.monotonic() - t0 > timeout or env.proc.poll() is not None:
                raise RuntimeError(
                    f"containerd not back after {timeout}s:\n{env.log_tail()}"
                ) from None
            time.sleep(0.1)
    old, env._client = env._client, client
    if old is not None:
        old.close()


class HiddenSocket:
    """Moves the CRI socket aside (clients get ENOENT) and back."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.aside = socket.with_name(socket.name + ".hidden")

    def __enter__(self) -> HiddenSocket:
        self.socket.rename(self.aside)
        return self

    def __exit__(self, *exc: object) -> None:
        self.aside.rename(self.socket)
