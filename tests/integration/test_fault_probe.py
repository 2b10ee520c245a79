"""Kernel-side faults: the ring full for a long time, the filter map full,
tracefs or BTF missing. Each ends in exact accounting or one clear error
naming what is missing, and the probe keeps working afterwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from syshub import Probe, syscalls
from syshub.errors import ProbeError
from syshub.nsproc import NamespacedProcess
from syshub.probe import KeyStats

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr
FILTER_KEYS = 65536  # max_entries of the filter and counter maps
NS_BASE = 0xF800_0000  # made-up namespace inodes, far above the real ones (~0xF000_0000)


def drain(probe: Probe) -> int:
    n, idle = 0, 0
    while idle < 3:
        got = len(probe.poll(65536, 100))
        n += got
        idle = idle + 1 if got == 0 else 0
    return n


def traced_loop(probe: Probe, loop: Path, argv: list[str], consume: bool) -> KeyStats:
    """Runs the workload in its own namespace with getppid traced; returns
    the counts of its key during the run: the key's latest lifetime (a
    reused inode's key lists what the namespace that had it before counted
    apart, as an earlier lifetime)."""
    with NamespacedProcess([str(loop), *argv], stdout=subprocess.DEVNULL) as p:
        old = probe.stats().key(p.pid_ns, GETPPID)
        probe.add_filter(p.pid_ns, "getppid")
        p.release()
        while p.poll() is None:
            if consume:
                probe.poll(65536, 50)
            else:
                time.sleep(0.1)
        assert p.wait(timeout=10) == 0
        drain(probe)
        new = probe.stats().key(p.pid_ns, GETPPID)
        probe.remove_filter(p.pid_ns, "getppid")
    assert new is not None
    assert new.lifetime == (1 if old is None else old.lifetime + 1), (old, new)
    return new


@pytest.mark.parametrize("fair_share_pct", [50, 100])
def test_ring_full_for_a_long_time(loop_bin: Path, fair_share_pct: int) -> None:
    """A flood into a 64 KiB ring nobody reads for 20 s: the drops are counted
    exactly, the records that fit are delivered, and tracing afterwards is
    whole again."""
    with Probe(1 << 16, fair_share_pct=fair_share_pct) as probe:
        k = traced_loop(probe, loop_bin, ["getppid", "--secs", "20"], consume=False)
        print(f"ring full 20s (fair share {fair_share_pct}): {k}")
        assert k.pending == 0 and k.matched == k.delivered + k.dropped + k.sampled_out
        assert k.dropped > 0.99 * k.matched and k.delivered > 0
        if fair_share_pct == 100:
            assert k.over_share == 0
        else:
            assert 0 < k.over_share <= k.dropped
        # Afterwards a namespace read as it runs loses nothing.
        argv = ["tick", "--count", "2000", "--interval-us", "100"]
        k2 = traced_loop(probe, loop_bin, argv, consume=True)
        assert k2.matched == 2000 and k2.delivered == 2000, k2
        assert probe.stats().kernel.nokey == 0


def test_filter_map_full(loop_bin: Path) -> None:
    """65,536 keys fill the filter map: one more is refused with a clear
    error, the keys already there keep working, and freeing one makes room."""
    with (
        Probe(1 << 22) as probe,
        NamespacedProcess(
            [str(loop_bin), "tick", "--count", "500", "--interval-us", "200"],
            stdout=subprocess.DEVNULL,
        ) as real,
    ):
        probe.add_filter(real.pid_ns, "getppid")
        for i in range(FILTER_KEYS - 1):
            probe.add_filter(NS_BASE + i, "getppid")
        with pytest.raises(ProbeError, match="filter map is full"):
            probe.add_filter(NS_BASE + FILTER_KEYS, "getppid")
        with pytest.raises(ProbeError, match="filter map is full"):
            probe.add_filter(NS_BASE + FILTER_KEYS, "openat")
        assert len(probe.filters()) == FILTER_KEYS
        real.release()
        assert real.wait(timeout=30) == 0
        drain(probe)
        k = probe.stats().key(real.pid_ns, GETPPID)
        assert k is not None and k.matched == 500 and k.delivered == 500, k
        assert probe.remove_filter(NS_BASE, "getppid")
        probe.add_filter(NS_BASE + FILTER_KEYS, "getppid")
        probe.remove_filter(real.pid_ns, "getppid")


# Loads a probe in a private mount namespace where part of /sys is hidden.
LOAD = textwrap.dedent(
    """
    import sys
    from syshub import Probe
    try:
        Probe(1 << 16).close()
        print("loaded")
    except Exception as e:
        print(type(e).__name__ + ": " + str(e))
        sys.exit(3)
    """
)


def load_with_hidden(path: str) -> subprocess.CompletedProcess[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is needed")
    script = f'mount -t tmpfs syshub-hide {path} && exec "$0" -c "$1"'
    return subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script, sys.executable, LOAD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_tracefs_missing_is_one_clear_error() -> None:
    # Hiding /sys/kernel hides tracefs and leaves nowhere to mount it.
    r = load_with_hidden("/sys/kernel")
    assert r.returncode == 3, r.stdout + r.stderr
    line = r.stdout.strip()
    assert line.startswith("ProbeError: tracefs is not mounted"), line
    assert "/sys/kernel/tracing" in line and "\n" not in line
    assert "Traceback" not in r.stderr


def test_btf_missing_is_one_clear_error() -> None:
    r = load_with_hidden("/sys/kernel/btf")
    assert r.returncode == 3, r.stdout + r.stderr
    line = r.stdout.strip()
    assert line.startswith("ProbeError: kernel BTF is missing"), line
    assert "/sys/kernel/btf/vmlinux" in line and "CONFIG_DEBUG_INFO_BTF" in line
    assert "Traceback" not in r.stderr
