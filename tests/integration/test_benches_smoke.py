"""CI smoke test of the benchmark harness: ``python -m benches --quick`` runs
every scenario at tiny sizes and writes well-formed results in which the
accounting identity holds everywhere. Timings are never asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bpf

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "idle",
    "throughput",
    "peers",
    "floor",
    "decode",
    "fanout",
    "output",
    "churn",
    "soak",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench-quick")
    r = subprocess.run(
        [sys.executable, "-m", "benches", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert r.returncode == 0, f"benches --quick failed ({r.returncode}):\n{r.stderr[-6000:]}"
    doc: dict[str, Any] = json.loads((out / "results.json").read_text())
    return doc, out


def _numbers(x: Any) -> list[float]:
    if isinstance(x, bool):
        return []
    if isinstance(x, int | float):
        return [float(x)]
    if isinstance(x, dict):
        return [n for v in x.values() for n in _numbers(v)]
    if isinstance(x, list):
        return [n for v in x for n in _numbers(v)]
    return []


def _positive(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_every_scenario_present_and_ran(quick_run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = quick_run
    assert doc["meta"]["quick"] is True
    assert set(doc["scenarios"]) == set(SCENARIOS)
    for name in SCENARIOS:
        sc = doc["scenarios"][name]
        assert sc["name"] == name
        assert sc["status"] in ("ok", "n/a"), (name, sc["status"], sc["note"], sc["notes"])
        if sc["status"] == "ok":
            assert _numbers(sc["metrics"]), f"{name}: no numbers in metrics"
            assert sc["tables"] and all(t["rows"] for t in sc["tables"]), name
        for t in sc["targets"]:
            assert t["met"] in (True, False, None)
            assert t["value"] is None or isinstance(t["value"], int | float)


def test_scenario_numbers(quick_run: tuple[dict[str, Any], Path]) -> None:
    sc = quick_run[0]["scenarios"]
    _check_idle(sc["idle"])

    tp = sc["throughput"]["metrics"]
    for consumer in ("batch", "per-event", "json"):
        c = tp["consumers"][consumer]
        assert _positive(c["loop_calls_per_s"]) and _positive(c["consumer_events_per_s"])
        assert c["matched_total"] > 0
    assert tp["ring_sweep"] and all(
        _positive(r["loop_calls_per_s"]) for r in tp["ring_sweep"].values()
    )

    peers = sc["peers"]["metrics"]
    assert _positive(peers["untraced"]["calls_per_s"])
    assert _positive(peers["syshub"]["loop_calls_per_s"])
    for tool, binary in (("bpftrace", "bpftrace"), ("perf trace", "perf"), ("strace", "strace")):
        entry = peers[tool]
        if shutil.which(binary) is None:
            assert "skipped" in entry
        else:  # measured, or skipped with a stated reason
            assert _positive(entry.get("loop_calls_per_s")) or entry.get("skipped")
    if shutil.which("strace"):
        assert peers["strace"]["events_seen"] > 0
    assert "ceiling" in peers

    _check_floor(sc["floor"])

    dec = sc["decode"]["metrics"]
    assert dec["records"] > 0
    assert all(_positive(r["events_per_cpu_s"]) for r in dec["python"].values())
    assert set(dec["mix"]) >= {"getppid", "openat", "close", "connect", "execve"}

    churn = sc["churn"]["metrics"]
    assert churn["rates"] and all(r["children"] > 0 for r in churn["rates"])
    assert all(r["children_without_event"] == 0 for r in churn["rates"])
    assert churn["key_growth"]["keys_tried"] > 0 and churn["key_growth"]["stats_ms_by_keys"]

    fan = sc["fanout"]
    if importlib.util.find_spec("syshub.hub") is None:
        assert fan["status"] == "n/a" and "hub not available" in fan["note"]
    elif fan["status"] == "ok":
        assert all(r["callback_events"] > 0 for r in fan["metrics"]["runs"])


def _check_idle(idle: dict[str, Any]) -> None:
    """Form of the idle scenario: every variant measured, (d) node-wide
    metrics counting, (e) an empty raw_tp enter+exit pair, (f) node-wide
    metrics with latency; the metrics variants' getppid counts accounted
    (strict) against the loop's own count in every round; BPF time per call
    of (d), (e), (f) when bpftool is there. No speed asserted."""
    assert idle["status"] == "ok", (idle["note"], idle["notes"])
    m = idle["metrics"]
    variants = "abcdef"
    rounds = idle["params"]["rounds"]
    assert set(m["median_ns"]) == set(variants)
    for key in ("median_ns", "ratio_to_a", "paired_ratio_to_a"):
        assert all(_positive(m[key][v]) for v in variants), (key, m[key])
    assert all(len(m["ns_per_call"][v]) == rounds for v in variants)
    assert set(m["added_ns"]) == set(variants) and m["added_ns"]["a"] == 0
    checks = {c["label"]: c for c in idle["accounting"]["checks"] if c["strict"]}
    for r in range(1, rounds + 1):
        for v in "df":
            c = checks[f"round {r} ({v}): metrics getppid count = loop calls"]
            # every getppid of the loop counted once by the metrics: no more, no less
            assert c["ok"] and c["matched"] > 0 and c["matched"] == c["delivered"], c
            assert c["dropped"] == 0 and c["sampled_out"] == 0, c
    (table,) = [t for t in idle["tables"] if t["title"].startswith("ns per untraced")]
    assert [row[0][:3] for row in table["rows"]] == [f"({v})" for v in variants]
    if shutil.which("bpftool"):
        bpf = m["bpf_ns_per_call"]
        assert all(bpf[v] and all(_positive(x) for x in bpf[v]) for v in "def"), bpf
    target = next(t for t in idle["targets"] if t["what"].startswith("node-wide metrics (d)"))
    assert _positive(target["value"]) and "with latency (f)" in target["note"]


def _check_floor(floor: dict[str, Any]) -> None:
    """Form of the floor scenario (issue 15): every variant measured for both
    loops, syshub's runs accounted per key and against the loop's own count,
    the reader thread found, BPF run time per program; no speed asserted."""
    assert floor["status"] == "ok", (floor["note"], floor["notes"])
    m = floor["metrics"]
    assert set(m["summary"]) == {"getppid", "openat"}
    for sc, d in m["summary"].items():
        variants = {"untraced", "floor", "floor_exit", "syshub", "syshub_durations"}
        if "syshub_durations" not in d["calls_per_s"]:  # a syshub without that option
            assert any("(c') skipped" in n for n in floor["notes"]), floor["notes"]
            variants.discard("syshub_durations")
        cpu_variants = set(variants)
        if sc == "getppid":
            variants.add("ceiling")
            if "ceiling" not in d["calls_per_s"]:
                assert any("ceiling skipped" in n for n in floor["notes"]), floor["notes"]
                variants.discard("ceiling")
        assert set(d["calls_per_s"]) == variants, (sc, d["calls_per_s"])
        assert all(_positive(d["calls_per_s"][v]) for v in variants), (sc, d)
        assert all(_positive(d["ns_per_call"][v]) for v in variants), (sc, d)
        assert all(_positive(d["ratio_to_floor_exit"][v]) for v in variants), (sc, d)
        assert _positive(d["syshub_over_floor"]) and _positive(d["syshub_over_floor_paired"])
        # the loop's CPU time per call (children's rusage less start-up), ceiling excluded
        assert set(d["cpu_ns_per_call"]) == cpu_variants
        assert all(_positive(x) for x in d["cpu_ns_per_call"].values()), (sc, d)
        assert d["delivered_total"] > 0
        assert d["matched_total"] == d["delivered_total"] + d["dropped_total"]
        # the reader thread is found by its name (syshub-reader) in /proc/self/task
        assert d["reader_thread_found"] is True, sc
        assert _positive(d["reader_cpu_ms_per_m_events"]), (sc, d)
        for run in m["runs"][sc]["floor"]:
            assert run["enter_runs"] > 0 and run["exit_runs"] > 0 and run["calls"] > 0
        for run in m["runs"][sc]["floor_exit"]:
            assert run["enter_runs"] == 0 and run["exit_runs"] > 0 and run["calls"] > 0
        for run in m["runs"][sc]["syshub"]:
            assert run["matched"] == run["calls"], (sc, run)
        if shutil.which("bpftool"):
            for variant in cpu_variants - {"untraced"}:
                assert m["bpf_costs"][sc][variant]["programs"], (sc, variant)
                assert _positive(d["bpf_ns_per_call"][variant]), (sc, variant)
    labels = {c["label"] for c in floor["accounting"]["checks"] if c["strict"]}
    for sc in ("getppid", "openat"):
        assert any(f"syshub {sc} rep 1: {sc} @ pid_ns" in x for x in labels), labels
        assert f"syshub {sc} rep 1: every loop call matched" in labels
    targets = [t for t in floor["targets"] if t["what"].startswith("syshub / floor")]
    assert len(targets) == 4 and all(_positive(t["value"]) for t in targets), targets


def test_accounting_holds_everywhere(quick_run: tuple[dict[str, Any], Path]) -> None:
    for name, sc in quick_run[0]["scenarios"].items():
        acct = sc["accounting"]
        assert acct["ok"] is True, (name, [c for c in acct["checks"] if not c["ok"]])
        strict = [c for c in acct["checks"] if c["strict"]]
        if sc["status"] == "ok" and name != "fanout":
            assert strict, f"{name}: no accounting checks recorded"
        for c in strict:
            assert c["matched"] == c["delivered"] + c["dropped"] + c["sampled_out"], (name, c)


def test_markdown_and_charts(quick_run: tuple[dict[str, Any], Path]) -> None:
    doc, out = quick_run
    md = (out / "results.md").read_text()
    for name in SCENARIOS:
        assert f"## {name}:" in md
    assert "| --- |" in md
    if importlib.util.find_spec("matplotlib") is not None:
        assert doc["meta"]["charts"], "matplotlib is installed but no chart was written"
        for png in doc["meta"]["charts"]:
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib" in doc["meta"]["chart_note"]


@pytest.mark.parametrize("count_only", [False, True], ids=["latency", "count-only"])
def test_metrics_scrape_bench_form(count_only: bool) -> None:
    """``python -m benches.metrics_scrape`` (the 10,000-series scrape benchmark of
    issue 12) at a tiny size: every series of the kernel map exported once,
    histogram lines only with latency, every timing present."""
    cmd = [sys.executable, "-m", "benches.metrics_scrape", "--namespaces", "4", "--repeat", "1"]
    r = subprocess.run(
        cmd + (["--count-only"] if count_only else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["namespaces"] == 4 and doc["latency"] is not count_only
    # ~32 series per workload namespace, plus the host's own
    assert doc["kernel_series"] >= 4 * 25
    # read, labelled, exported in that order; the host may add series meanwhile
    assert doc["kernel_series"] <= doc["report_rows"] <= doc["exported_label_sets"]
    assert doc["exported_label_sets"] - doc["kernel_series"] < 50
    per_set = doc["exposition_lines"] / doc["exported_label_sets"]
    # with latency: a counter plus 31 bounds, +Inf, _sum, _count per label set
    assert per_set > 30 if not count_only else per_set < 3
    for part in ("read_map", "read_and_label", "scrape", "generic_prometheus_client_scrape"):
        assert doc[part]["wall_ms"] >= 0 and doc[part]["cpu_ms"] >= 0
    assert _positive(doc["scrape"]["wall_ms"]) and _positive(doc["exposition_bytes"])
