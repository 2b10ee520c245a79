"""Test policy: tests marked ``bpf`` need root and a BPF-capable kernel. They
skip with a reason when that is missing, except in CI where
``SYSHUB_REQUIRE_BPF=1`` turns the skip into a failure."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGS = Path(__file__).resolve().parent / "progs"


# A run started with SIGINT/SIGHUP ignored (nohup, a background job of a
# non-interactive shell) passes the ignoring on to every subprocess through
# exec, and the tests of Ctrl-C and hang-up would see signals do nothing.
# The tests are about syshub's own handling: start them from the defaults.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _bpf_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel has no BTF (/sys/kernel/btf/vmlinux)"
    try:
        import syshub.probe  # noqa: F401
    except ImportError as e:
        return f"native module not built: {e}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _bpf_unavailable()
    if reason is None or os.environ.get("SYSHUB_REQUIRE_BPF") == "1":
        # In CI a BPF test that cannot run must fail, not skip: let it run.
        return
    for item in items:
        if "bpf" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def known_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static C workload, compiled once per session."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler (gcc) to build tests/progs/known_calls.c")
    out = tmp_path_factory.mktemp("progs") / "known_calls"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(PROGS / "known_calls.c")], check=True)
    return out


@pytest.fixture
def probe() -> Iterator[object]:
    from syshub import Probe

    p = Probe(1 << 22)
    try:
        yield p
    finally:
        p.close()
