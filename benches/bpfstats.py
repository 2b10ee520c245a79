"""Per-program BPF run time (kernel.bpf_stats_enabled + bpftool), to say where
the time of a traced call goes. Diagnostic only: enabling the statistics adds
a little to every program run, so measured rates are taken without it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")


def available() -> str | None:
    """None when usable, else why not."""
    if shutil.which("bpftool") is None:
        return "bpftool not installed"
    try:
        with SYSCTL.open("r+"):
            pass
    except OSError as e:
        return f"{SYSCTL} not writable: {e.strerror}"
    return None


def _programs() -> list[dict[str, Any]]:
    r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return []
    data = json.loads(r.stdout or "[]")
    return data if isinstance(data, list) else []


def program_ids(names: set[str]) -> set[int]:
    """Ids of loaded programs with one of these names."""
    return {int(p["id"]) for p in _programs() if p.get("name") in names}


def run_costs(ids: set[int]) -> dict[str, dict[str, float]]:
    """{name: {runs, ns_per_run}} for the given program ids (summed by name)."""
    acc: dict[str, list[int]] = {}
    for p in _programs():
        if int(p.get("id", -1)) in ids:
            a = acc.setdefault(str(p.get("name")), [0, 0])
            a[0] += int(p.get("run_cnt", 0))
            a[1] += int(p.get("run_time_ns", 0))
    return {n: {"runs": c, "ns_per_run": (t / c if c else 0.0)} for n, (c, t) in acc.items()}


@contextmanager
def stats_enabled() -> Iterator[None]:
    """Turn the kernel's BPF run-time statistics on, restoring the old value."""
    old = SYSCTL.read_text().strip()
    SYSCTL.write_text("1\n")
    try:
        yield
    finally:
        SYSCTL.write_text(f"{old}\n")


def all_ids() -> set[int]:
    """Ids of every loaded program (to tell a loader's new programs by
    difference, whatever they are named)."""
    return {int(p["id"]) for p in _programs() if "id" in p}


def run_delta(
    start: dict[str, dict[str, float]], end: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """{name: {runs, ns_per_run}} between two :func:`run_costs` snapshots of
    the same programs; programs that did not run in between are left out."""
    out: dict[str, dict[str, float]] = {}
    for name, e in end.items():
        b = start.get(name, {"runs": 0, "ns_per_run": 0.0})
        runs = e["runs"] - b["runs"]
        if runs > 0:
            ns = e["runs"] * e["ns_per_run"] - b["runs"] * b["ns_per_run"]
            out[name] = {"runs": runs, "ns_per_run": ns / runs}
    return out
