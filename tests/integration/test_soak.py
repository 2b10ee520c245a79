"""The soak scenario for 60 s (benches/scenarios/soak.py runs it for an hour):
pid namespaces started and stopped at 5/s, Traces created and deleted every
3 s; memory, file descriptors, threads and the probe's map entries stay
flat (descriptors, threads and map entries back to their idle values once
every container stopped and every Trace was deleted), and every job and key
balances exactly at the end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Loaded by path: importing the benches.scenarios package would load every scenario.
_spec = importlib.util.spec_from_file_location("syshub_soak", ROOT / "benches/scenarios/soak.py")
assert _spec is not None and _spec.loader is not None
_soak = importlib.util.module_from_spec(_spec)
sys.modules["syshub_soak"] = _soak
_spec.loader.exec_module(_soak)
soak = _soak.soak

pytestmark = pytest.mark.bpf

SECS = 60.0


def test_soak_one_minute(loop_bin: Path) -> None:
    rep = soak(loop_bin, SECS)
    growth = rep.growth()
    print(
        f"soak {SECS:g}s: {rep.started} started, {rep.traces} traces, {rep.events} events, "
        f"growth {growth}"
    )
    for s in rep.samples:
        print(s)
    assert not rep.errors, rep.errors
    assert rep.started >= 4 * SECS and rep.stopped == rep.started
    assert rep.traces >= SECS / 3 - 1 and rep.events > 0
    bad = [c for c in rep.checks if not c.ok]
    assert not bad, bad
    assert len(rep.samples) >= 5
    # Descriptors and threads: compared idle (no container, no Trace) before and
    # after, since live containers and Traces move the in-run samples by ~15 fds.
    idle = rep.idle_growth()
    print(f"idle before {rep.idle_before}\nidle after {rep.idle_after}")
    assert idle["fds"] <= 0, idle
    # One thread more at most: the probe's hook reaper (syshub-detach), started at
    # the first detach, lives as long as the probe.
    assert idle["threads"] <= 1, idle
    for name in ("filters", "counters", "key_read", "scope_tasks"):
        assert idle.get(f"map:{name}", 0) <= 0, idle
    assert growth["threads"] <= 1, growth
    assert growth["rss_kib"] <= 16 * 1024, growth
    # Keys follow the live containers (~10): bounded, not accumulating.
    for name in ("filters", "counters", "key_read"):
        assert growth.get(f"map:{name}", 0) <= 10, growth
