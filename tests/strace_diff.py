"""Differential test against real strace on real programs: each workload of
``tests/strace_workloads.py`` runs twice in the same (re-created) work
directory, once under ``strace -ff`` and once under ``syshub trace`` (the CLI,
JSON events), with the same syscall list. Processes are paired by the
programs they exec (and their order), then calls by name within each
process, and compared as ``tests/conformance_compare.py`` does: names,
returns and errnos, paths, argv, flags, modes and socket addresses.

Not comparable, by design (never compared): pointer values, pids (strace
sees host pids, the command runs in its own pid namespace: ``pid`` returns
are compared as failed-or-not), and the random part of temporary file names
a workload lists in ``random_paths`` (git's ``tmp_obj_XXXXXX``).

Run as a script for the per-workload table::

    sudo .venv/bin/python tests/strace_diff.py [WORKLOAD...]
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformance_compare import CATEGORIES as CATEGORIES
from conformance_compare import Check, Pair, SyscallDef, compare_call, load_table
from strace_text import StraceCall, parse_strace
from strace_workloads import Workload, free_ports, workloads

ROOT = Path(__file__).resolve().parent.parent
SYSHUB = Path(sys.executable).parent / "syshub"


class JsonEvent:
    """A syshub JSON event document with the attributes compare_call reads."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.syscall = str(d["syscall"]["name"]).removeprefix("sys_")
        self.args: dict[str, Any] = d["args"]
        self.returned = bool(d.get("returned", d.get("return") is not None))
        self.no_exit = not self.returned
        self.ret = d.get("return")
        self.errno = d.get("errno")
        self.error = d.get("error")
        self.tid = int(d["tid"])

    def to_text(self) -> str:
        args = ", ".join(json.dumps(v) for v in self.args.values())
        ret = self.ret if self.returned else "?"
        err = f" {self.error}" if self.errno is not None else ""
        return f"{self.syscall}({args}) = {ret}{err}"


@dataclass
class Proc:
    """One traced thread's calls, with the key that pairs it across tools."""

    key: tuple[str, ...]
    calls: list[Any]


@dataclass
class Outcome:
    workload: str
    pairs: list[Pair]
    procs: tuple[int, int]  # processes seen by strace, by syshub
    seconds: float
    notes: list[str] = field(default_factory=list)

    def rate(self, category: str) -> tuple[int, int]:
        cs = [c for p in self.pairs for c in p.checks if c.category == category]
        return sum(c.ok for c in cs), len(cs)

    def failures(self) -> list[tuple[Pair, Check]]:
        return [(p, c) for p in self.pairs for c in p.failed()]


def _key(first_exec: list[str] | None) -> tuple[str, ...]:
    return tuple(first_exec) if first_exec else ("<no exec>",)


def _procs(groups: dict[int, list[Any]], argv_of: Any) -> list[Proc]:
    """Threads keyed by the argv of their execve calls (threads that exec
    nothing share the key ``<no exec>``; compare() pairs those by their calls)."""
    out: list[Proc] = []
    for calls in groups.values():
        execs = [a for c in calls if (a := argv_of(c)) is not None]
        key = tuple(x for argv in execs for x in (*argv, "|")) or ("<no exec>",)
        out.append(Proc(key, calls))
    return out


def _strace_argv(c: StraceCall) -> list[str] | None:
    from strace_text import strace_strv

    if c.name != "execve" or c.ret != 0 or len(c.args) < 2:
        return None
    return strace_strv(c.args[1])


def _our_argv(e: JsonEvent) -> list[str] | None:
    if e.syscall != "execve" or e.ret != 0:
        return None
    argv = e.args.get("argv")
    return argv if isinstance(argv, list) else None


def _normalize(text: str, prefixes: Sequence[str]) -> str:
    for p in prefixes:
        text = re.sub(re.escape(p) + r"[A-Za-z0-9]{6}", p + "XXXXXX", text)
    return text


def _env(w: Workload, base: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(base / "home"),
        "LC_ALL": "C",
        "PYTHONHASHSEED": "0",
        "TERM": "dumb",
    }
    env.update(w.env)
    return env


def _fresh(base: Path, w: Workload) -> Path:
    for d in ("work", "home"):
        p = base / d
        if p.exists():
            shutil.rmtree(p)
        p.mkdir()
    if w.setup is not None:
        w.setup(base / "work")
    return base / "work"


def run_strace(w: Workload, base: Path) -> list[Proc]:
    work = _fresh(base, w)
    out = base / "st"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    cmd = ["strace", "-ff", "-qq", "-s", "4096", "-e", "signal=none", "-e", "trace=" + w.syscalls]
    cmd += ["-o", str(out / "t"), "--", *w.argv]
    # stderr a pipe, as under syshub (whose summary goes there): the same fd kinds.
    subprocess.run(
        cmd,
        cwd=work,
        env=_env(w, base),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    groups: dict[int, list[Any]] = {}
    files = sorted(out.iterdir(), key=lambda p: int(p.name.split(".")[-1]))
    for f in files:
        text = _normalize(f.read_text(errors="surrogateescape"), w.random_paths)
        groups[int(f.name.split(".")[-1])] = parse_strace(text)
    return _procs(groups, _strace_argv)


def run_syshub(w: Workload, base: Path) -> list[Proc]:
    work = _fresh(base, w)
    out = base / "sh.json"
    cmd = [str(SYSHUB), "trace", "-s", w.syscalls, "--format", "json", "--output", str(out)]
    cmd += ["--str-max", "4096", "--argv-max", "128", "--buf-max", "0", "--", *w.argv]
    proc = subprocess.run(
        cmd,
        cwd=work,
        env=_env(w, base),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    summary = proc.stderr.decode(errors="replace")
    m = re.search(r"(\d+) matched: (\d+) printed", summary)
    if m is None or m.group(1) != m.group(2):
        raise RuntimeError(f"syshub lost events or failed: {summary.strip()}")
    evs = [
        JsonEvent(json.loads(_normalize(line, w.random_paths)))
        for line in out.read_text().splitlines()
        if line.strip()
    ]
    # A thread's call order: when each returned (a call seen at exit only has
    # no entry time); exit/exit_group, which never return, by their entry.
    evs.sort(key=lambda e: (e.d["finish"] or e.d["start"], e.d["seq"]))
    groups: dict[int, list[Any]] = {}
    for e in evs:
        groups.setdefault(e.tid, []).append(e)
    return _procs(groups, _our_argv)


def _align(st: list[StraceCall], ours: list[Any]) -> list[Pair]:
    pairs: list[Pair] = []
    sn, on = [c.name for c in st], [e.syscall for e in ours]
    sm = difflib.SequenceMatcher(a=sn, b=on, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            pairs += [Pair(sn[i1 + k], st[i1 + k], ours[j1 + k]) for k in range(i2 - i1)]
            continue
        pairs += [
            Pair(sn[k], st[k], None, [Check("name", "", None, sn[k], False)]) for k in range(i1, i2)
        ]
        pairs += [
            Pair(on[k], None, ours[k], [Check("name", "", on[k], None, False)])
            for k in range(j1, j2)
        ]
    return pairs


def _names(p: Proc) -> list[str]:
    return [c.name if isinstance(c, StraceCall) else c.syscall for c in p.calls]


def _pair_procs(st: list[Proc], ours: list[Proc]) -> list[tuple[Proc | None, Proc | None]]:
    """Processes of one key paired by how alike their call sequences are."""
    left = list(ours)
    out: list[tuple[Proc | None, Proc | None]] = []
    for a in st:
        if not left:
            out.append((a, None))
            continue
        best = max(
            left,
            key=lambda b: difflib.SequenceMatcher(a=_names(a), b=_names(b), autojunk=False).ratio(),
        )
        left.remove(best)
        out.append((a, best))
    out += [(None, b) for b in left]
    return out


def compare(st: list[Proc], ours: list[Proc], table: dict[str, SyscallDef]) -> list[Pair]:
    pairs: list[Pair] = []
    keys = list(dict.fromkeys([p.key for p in st] + [p.key for p in ours]))
    for key in keys:
        mine = [p for p in ours if p.key == key]
        for a, b in _pair_procs([p for p in st if p.key == key], mine):
            for p in _align(a.calls if a else [], b.calls if b else []):
                if p.strace is not None and p.ours is not None:
                    p.checks = compare_call(p.strace, p.ours, table.get(p.name))
                pairs.append(p)
    return pairs


def run_workload(w: Workload, base: Path, table: dict[str, SyscallDef]) -> Outcome:
    t0 = time.monotonic()
    st = run_strace(w, base)
    ours = run_syshub(w, base)
    return Outcome(w.name, compare(st, ours, table), (len(st), len(ours)), time.monotonic() - t0)


def run(names: Sequence[str] = (), base: Path | None = None) -> list[Outcome]:
    table = load_table()
    ws = [w for w in workloads(free_ports(4)) if not names or w.name in names]
    with tempfile.TemporaryDirectory(prefix="syshub-strace-diff-") as d:
        root = base or Path(d)
        return [_run_settled(w, root, table) for w in ws]


def _run_settled(w: Workload, base: Path, table: dict[str, SyscallDef]) -> Outcome:
    """One run, and one more when it differs: tar and git fork and use
    threads, and when two processes have the same argv the pairing by call
    sequence can pick the wrong partner under load (seen twice in CI-like runs,
    never on a quiet machine). A real decoding difference differs both times;
    the re-run is recorded in the outcome's notes."""
    first = run_workload(w, base, table)
    bad = len(first.failures())
    if not bad:
        return first
    again = run_workload(w, base, table)
    again.notes.append(f"re-run: the first run had {bad} differing fields")
    return again


def report(outs: Sequence[Outcome]) -> str:
    cats = list(CATEGORIES)
    head = f"{'workload':<14} {'procs':>7} {'calls':>6} {'fields':>7} {'equal':>7}  " + " ".join(
        f"{cat:>9}" for cat in cats
    )
    lines = [head]
    tot_ok = tot_n = tot_calls = 0
    for o in outs:
        calls = sum(1 for p in o.pairs if p.strace is not None and p.ours is not None)
        ok = sum(c.ok for p in o.pairs for c in p.checks)
        n = sum(len(p.checks) for p in o.pairs)
        tot_ok, tot_n, tot_calls = tot_ok + ok, tot_n + n, tot_calls + calls
        cells = []
        for cat in cats:
            good, cnt = o.rate(cat)
            cells.append(f"{good}/{cnt}" if cnt else "-")
        pct = 100.0 * ok / n if n else 100.0
        lines.append(
            f"{o.workload:<14} {o.procs[0]:>3}/{o.procs[1]:<3} {calls:>6} {n:>7} {pct:>6.2f}%  "
            + " ".join(f"{cell:>9}" for cell in cells)
        )
    pct = 100.0 * tot_ok / tot_n if tot_n else 100.0
    lines.append(f"{'total':<14} {'':>7} {tot_calls:>6} {tot_n:>7} {pct:>6.2f}%")
    for o in outs:
        for p, c in o.failures()[:40]:
            where = f"{o.workload}: {p.name} {c.category}" + (f" {c.arg}" if c.arg else "")
            lines.append(f"  MISMATCH {where}: {c.ours!r} | {c.strace!r}")
            if p.strace is not None:
                lines.append(f"      strace: {p.strace.text[:160]}")
            if p.ours is not None:
                lines.append(f"      syshub: {p.ours.to_text()[:160]}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("needs root (eBPF, pid namespaces)", file=sys.stderr)
        return 2
    outs = run(argv)
    print(report(outs))
    return 0 if not any(o.failures() for o in outs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
