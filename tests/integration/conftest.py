"""Fixtures for integration tests that need a real container runtime.

``containerd`` (session scope) starts a private containerd (see
``containerd_env.py``) and tears it down at the end of the session. Without the
binaries, or without root, tests using it are skipped - unless the environment
sets ``SYSHUB_REQUIRE_CONTAINERD=1`` (CI), in which case they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if importlib.util.find_spec("syshub") is None:  # source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from containerd_env import ContainerdEnv

    from syshub import Hub
    from syshub.topology import LocalObserver

LOOP_SRC = Path(__file__).resolve().parents[2] / "benches" / "workloads" / "loop.c"
_ENV_REQUIRE = "SYSHUB_REQUIRE_CONTAINERD"
_timings_key = pytest.StashKey[dict[str, float]]()


def _require() -> bool:
    return os.environ.get(_ENV_REQUIRE, "") not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _require():
        pytest.fail(f"{_ENV_REQUIRE}=1 but containerd cannot run: {reason}", pytrace=False)
    pytest.skip(f"containerd unavailable: {reason}")


@pytest.fixture(scope="session")
def containerd(request: pytest.FixtureRequest) -> Iterator[ContainerdEnv]:
    """A running private containerd with the busybox test image imported."""
    # imported here so that other integration tests do not depend on grpcio
    from containerd_env import ContainerdEnv, ContainerdUnavailable

    try:
        ContainerdEnv.check_prerequisites()
    except ContainerdUnavailable as exc:
        _unavailable(str(exc))
    env = ContainerdEnv()
    try:
        env.start()
    except Exception as exc:
        _unavailable(f"containerd did not start: {exc}\n{env.log_tail()}")
    request.config.stash[_timings_key] = env.timings
    try:
        yield env
    finally:
        env.stop()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    timings = config.stash.get(_timings_key, None)
    if timings:
        parts = ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in sorted(timings.items()))
        terminalreporter.write_line(f"containerd timings: {parts}")


@pytest.fixture
def hub_obs() -> Iterator[tuple[Hub, LocalObserver]]:
    """A started Hub on the real probe with a LocalObserver the test drives."""
    from syshub import Hub, HubConfig
    from syshub.topology import LocalObserver

    obs = LocalObserver()
    hub = Hub(HubConfig(ring_bytes=1 << 22), obs)
    hub.start()
    try:
        yield hub, obs
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def loop_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benches' C syscall loop (``benches/workloads/loop.c``), compiled
    once per session: floods and steady callers of the fair-share, fault and
    soak tests."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler (gcc) to build benches/workloads/loop.c")
    out = tmp_path_factory.mktemp("loop") / "loop"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(LOOP_SRC)], check=True)
    return out
