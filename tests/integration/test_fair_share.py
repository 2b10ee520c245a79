"""A flood cannot blind: one pid namespace calling getppid as fast as it can
and a quiet one at ~1,000 calls/s (getppid, then a 700 us sleep), traced
together into a small ring read by a slow consumer. With the fair share
(default) every call of the quiet namespace is delivered and the flooder's
excess is counted per key as ``over_share``; without it
(``fair_share_pct=100``) the quiet namespace loses calls to the full ring.
Accounting is exact on both keys either way."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from syshub import Probe, syscalls
from syshub.nsproc import NamespacedProcess
from syshub.probe import KeyStats

pytestmark = pytest.mark.bpf

RING = 1 << 20
SECS = 3.0
GETPPID = syscalls.lookup("getppid").nr


@dataclass
class Run:
    flood: KeyStats
    quiet: KeyStats
    consumed: int
    secs: float


def flood_and_quiet(loop: Path, fair_share_pct: int) -> Run:
    """Both namespaces traced on getppid for SECS; the consumer takes at most
    500 events per 10 ms (<= 50,000/s) while they run, then drains."""
    argv = [str(loop), "getppid", "--secs", str(SECS)]
    quiet_argv = [str(loop), "tick", "--secs", str(SECS), "--interval-us", "700"]
    out = subprocess.DEVNULL
    with (
        Probe(RING, fair_share_pct=fair_share_pct) as probe,
        NamespacedProcess(argv, stdout=out) as flood,
        NamespacedProcess(quiet_argv, stdout=out) as quiet,
    ):
        probe.add_filter(flood.pid_ns, "getppid")
        probe.add_filter(quiet.pid_ns, "getppid")
        t0 = time.monotonic()
        flood.release()
        quiet.release()
        consumed = 0
        while flood.poll() is None or quiet.poll() is None:
            consumed += len(probe.poll(500, 0))
            time.sleep(0.01)
        secs = time.monotonic() - t0
        assert flood.wait(timeout=10) == 0 and quiet.wait(timeout=10) == 0
        idle = 0
        while idle < 3:
            n = len(probe.poll(65536, 100))
            consumed += n
            idle = idle + 1 if n == 0 else 0
        st = probe.stats()
        f, q = st.key(flood.pid_ns, GETPPID), st.key(quiet.pid_ns, GETPPID)
        probe.remove_filter(flood.pid_ns, "getppid")
        probe.remove_filter(quiet.pid_ns, "getppid")
        assert f is not None and q is not None
        return Run(f, q, consumed, secs)


def exact(k: KeyStats) -> None:
    assert k.pending == 0, k
    assert k.matched == k.delivered + k.dropped + k.sampled_out, k
    assert k.over_share <= k.dropped, k


def test_a_flood_does_not_blind_a_quiet_namespace(loop_bin: Path) -> None:
    r = flood_and_quiet(loop_bin, 50)
    print(
        f"fair share: flooder matched {r.flood.matched} delivered {r.flood.delivered} "
        f"dropped {r.flood.dropped} (over share {r.flood.over_share}); quiet matched "
        f"{r.quiet.matched} delivered {r.quiet.delivered} dropped {r.quiet.dropped}; "
        f"{r.consumed} consumed in {r.secs:.1f}s"
    )
    exact(r.flood)
    exact(r.quiet)
    # The quiet namespace called ~1,000/s for SECS (sleep granularity: fewer).
    assert r.quiet.matched >= 1000, r.quiet
    assert r.quiet.dropped == 0 and r.quiet.delivered == r.quiet.matched, r.quiet
    # The flooder outran the consumer: its excess was dropped as over its share.
    assert r.flood.matched > 20 * r.quiet.matched, r.flood
    assert r.flood.over_share > 0, r.flood
    assert r.flood.over_share >= r.flood.dropped * 0.9, r.flood
    assert r.consumed == r.flood.delivered + r.quiet.delivered


def test_without_fair_share_the_quiet_namespace_loses_calls(loop_bin: Path) -> None:
    r = flood_and_quiet(loop_bin, 100)
    print(
        f"no fair share: flooder matched {r.flood.matched} delivered {r.flood.delivered} "
        f"dropped {r.flood.dropped}; quiet matched {r.quiet.matched} delivered "
        f"{r.quiet.delivered} dropped {r.quiet.dropped}"
    )
    exact(r.flood)
    exact(r.quiet)
    assert r.flood.over_share == 0 and r.quiet.over_share == 0
    assert r.quiet.dropped > 0, r.quiet
    assert r.flood.dropped > 0, r.flood


def test_fair_share_setting_is_range_checked() -> None:
    with pytest.raises(ValueError, match="fair_share_pct"):
        Probe(RING, fair_share_pct=101)
    with pytest.raises(ValueError, match="fair_share_pct"):
        Probe(RING, fair_share_pct=-1)
