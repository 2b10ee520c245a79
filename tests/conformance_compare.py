"""Decoder conformance: syshub's decoded syscalls against strace's, call by call.

``tests/progs/conformance.c`` makes a fixed sequence of direct syscalls. It runs
twice in the same (re-created) work directory: once under ``strace`` and once
traced by syshub in a new pid namespace, with the same syscall list. The two
streams are aligned call by call (from the program's first ``chdir``, which
skips the initial ``execve`` and libc's start-up calls) and compared on:

* ``name``: the syscall name (an unpaired call is a name mismatch);
* ``return``: the return value (errors: both failed; ``ptr`` and ``pid`` returns,
  which differ between runs or namespaces: whether it failed);
* ``errno``: the errno name;
* ``paths``: string arguments (table capture types in ``PATH_TYPES``);
* ``flags``: symbolic arguments (render types in ``FLAG_TYPES``), as sets of
  ``|``-separated names, numbers compared by value;
* ``addr``: socket addresses (``sockaddr_in``/``sockaddr_out`` captures).

A syscall is *claimed* for a category when the syscall table gives one of its
arguments a type of that category; only claimed arguments are compared.

Usable as a library (``run()``, ``report()``) and as a script::

    python tests/conformance_compare.py        # prints the per-syscall report
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe_helpers import drain
from strace_text import (
    StraceCall,
    c_unquote,
    flag_set,
    mode_value,
    our_addr,
    run_strace,
    strace_addr,
    strace_strv,
    strip_comments,
)

ROOT = Path(__file__).resolve().parent.parent
PROG_SRC = Path(__file__).resolve().parent / "progs" / "conformance.c"

# Table argument types whose value is a string we compare with strace's.
PATH_TYPES = frozenset({"str"})
# String arrays (execve's argv).
ARGV_TYPES = frozenset({"strv"})
# File modes, compared as numbers (strace: 0644, S_IFREG|0644).
MODE_TYPES = frozenset({"mode"})

# Table render types that we claim to decode symbolically (flags, enums,
# AT_FDCWD, octal modes). strace renders all of these symbolically too.
FLAG_TYPES = frozenset(
    {
        "open_flags",
        "at_flags",
        "access_mode",
        "dirfd",
        "sock_domain",
        "sock_type",
        "accept_flags",
        "msg_flags",
        "shut_how",
        "sock_level",
        "sock_optname",
        "prot",
        "map_flags",
        "madvise",
        "clone_flags",
        "mount_flags",
        "umount_flags",
        "unshare_flags",
        "whence",
        "fcntl_cmd",
        "flock_op",
        "fadvise_advice",
        "fallocate_mode",
        "renameat2_flags",
        "statx_mask",
        "signal",
        "clockid",
        "timer_flags",
        "tfd_flags",
        "eventfd_flags",
        "inotify_init_flags",
        "inotify_mask",
        "memfd_flags",
        "pipe_flags",
        "epoll_create_flags",
        "epoll_op",
        "getrandom_flags",
        "rlimit_resource",
        "rusage_who",
        "prio_which",
        "prctl_option",
    }
)

# Table capture types holding a socket address.
ADDR_TYPES = frozenset({"sockaddr_in", "sockaddr_out"})


# Return kinds compared as "failed or not" only: addresses and pids differ
# between the two runs (and strace sees host pids, syshub namespace pids).
LOOSE_RETURNS = frozenset({"ptr", "pid"})

CATEGORIES = ("name", "return", "errno", "paths", "argv", "flags", "modes", "addr")


# --------------------------------------------------------------------------- table


@dataclass(frozen=True)
class SyscallDef:
    name: str
    ret: str
    args: tuple[tuple[str, str], ...]  # (name, type without "(...)")

    def claims(self, types: frozenset[str]) -> bool:
        return any(t in types for _, t in self.args)


def load_table(text: str | None = None) -> dict[str, SyscallDef]:
    """The syscall table (``bpf-rs/data/syscalls_x86_64.tsv``) by name."""
    if text is None:
        text = (ROOT / "bpf-rs" / "data" / "syscalls_x86_64.tsv").read_text()
    table: dict[str, SyscallDef] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        args: list[tuple[str, str]] = []
        if cols[6] != "-":
            for a in cols[6].split(";"):
                name, ty = a.split(":", 1)
                args.append((name, ty.split("(", 1)[0]))
        table[cols[1]] = SyscallDef(cols[1], cols[4], tuple(args))
    return table


def traced_syscalls(src: Path = PROG_SRC) -> list[str]:
    """Every syscall the program makes (its ``SYS_x`` names), sorted."""
    return sorted(set(re.findall(r"\bSYS_(\w+)", src.read_text())))


# --------------------------------------------------------------------------- syshub


def run_syshub(prog: Path, workdir: Path, syscalls: Sequence[str]) -> list[Any]:
    """Runs ``prog workdir`` in a new pid namespace traced by syshub; its events."""
    from syshub import Probe
    from syshub.nsproc import NamespacedProcess

    probe = Probe(1 << 24)
    try:
        with NamespacedProcess(
            [str(prog), str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as child:
            for s in syscalls:
                probe.add_filter(child.pid_ns, s, 1, str_max=4096)
            child.release()
            status = child.wait(timeout=30)
            ns, pid = child.pid_ns, child.pid
        if status != 0:
            raise RuntimeError(f"{prog.name} under syshub exited {status}")
        # Also match the host pid: once the namespace is gone, its inode number can
        # be reused by a new namespace that the still installed filters then match.
        evs = [e for e in drain(probe) if e.pid_ns == ns and e.tgid == pid]
        stats = probe.stats()
    finally:
        probe.close()
    lost = [k for k in stats.keys if k.dropped]
    if lost:
        raise RuntimeError(f"syshub dropped events: {lost}")
    # Call order: when each returned (a call seen at exit only has no entry
    # time), exit/exit_group (never returning) by their entry.
    evs.sort(key=lambda e: (e.exit_ns or e.enter_ns, e.seq))
    return evs


# --------------------------------------------------------------------------- compare


@dataclass
class Check:
    category: str
    arg: str
    ours: Any
    strace: Any
    ok: bool


@dataclass
class Pair:
    name: str
    strace: StraceCall | None
    ours: Any | None  # syshub Event
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def returned(ev: Any) -> bool:
    """Did the call return to the program (``returned``; older events: not no_exit)?"""
    r = getattr(ev, "returned", None)
    return (not ev.no_exit) if r is None else bool(r)


def _mode_check(aname: str, ours: Any, stext: str) -> Check:
    a, b = mode_value(ours), mode_value(strip_comments(stext))
    return Check("modes", aname, ours, stext, a is not None and a == b)


def _struct_mode(aname: str, ours: Any, stext: str) -> Check | None:
    """st_mode / stx_mode of a stat result, when both sides show one."""
    if not isinstance(ours, dict):
        return None
    for key in ("st_mode", "stx_mode"):
        m = re.search(key + r"=([A-Z_|0-9]+)", stext)
        if key in ours and m:
            return _mode_check(f"{aname}.{key}", ours[key], m.group(1))
    return None


def compare_call(st: StraceCall, ev: Any, d: SyscallDef | None) -> list[Check]:
    checks = [Check("name", "", ev.syscall, st.name, ev.syscall == st.name)]
    # return value and errno: a call that did not return has neither
    back = returned(ev)
    our_err = ev.error if back and ev.errno is not None else None
    checks.append(Check("errno", "", our_err, st.errno, our_err == st.errno))
    if not back or st.ret is None:
        ok = not back and st.ret is None
        checks.append(Check("return", "", ev.ret if back else None, st.ret, ok))
    elif st.errno is not None or our_err is not None:
        checks.append(
            Check("return", "", ev.ret, st.ret, st.errno is not None and our_err is not None)
        )
    elif d is not None and d.ret in LOOSE_RETURNS:
        checks.append(Check("return", "", ev.ret, st.ret, ev.ret >= 0 or ev.ret < -4095))
    else:
        checks.append(Check("return", "", ev.ret, st.ret, ev.ret == st.ret))
    if d is None:
        return checks
    args = ev.args
    for i, (aname, ty) in enumerate(d.args):
        if i >= len(st.args):
            break  # strace omits it (open without O_CREAT: no mode)
        stext = st.args[i]
        ours = args.get(aname)
        if ty in PATH_TYPES or ty in ARGV_TYPES:
            theirs: Any = c_unquote(stext) if ty == "str" else strace_strv(stext)
            if theirs is None and strip_comments(stext) == "NULL":
                theirs = "NULL"
            if isinstance(ours, int) and ours == 0:
                ours = "NULL"
            cat = "paths" if ty in PATH_TYPES else "argv"
            checks.append(Check(cat, aname, ours, theirs, ours == theirs))
        elif ty in MODE_TYPES:
            checks.append(_mode_check(aname, ours, stext))
        elif ty == "struct_out" and (c := _struct_mode(aname, ours, stext)) is not None:
            checks.append(c)
        elif ty in FLAG_TYPES:
            a, b = flag_set(ours), flag_set(stext)
            checks.append(Check("flags", aname, ours, stext, a is not None and a == b))
        elif ty in ADDR_TYPES:
            a2, b2 = our_addr(ours), strace_addr(strip_comments(stext))
            if a2 is None and b2 is None:
                continue  # not read (NULL, failed call, zero length) on both sides
            checks.append(Check("addr", aname, ours, stext, a2 == b2))
    return checks


def align(strace: Sequence[StraceCall], ours: Sequence[Any]) -> list[Pair]:
    """Pairs the two streams from the first chdir on (the program's marker)."""

    def start(names: list[str]) -> int:
        return names.index("chdir") if "chdir" in names else 0

    sn = [c.name for c in strace]
    on = [e.syscall for e in ours]
    s0, o0 = start(sn), start(on)
    sn, on = sn[s0:], on[o0:]
    st, ev = list(strace[s0:]), list(ours[o0:])
    pairs: list[Pair] = []
    sm = difflib.SequenceMatcher(a=sn, b=on, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                pairs.append(Pair(sn[i1 + k], st[i1 + k], ev[j1 + k]))
            continue
        for k in range(i1, i2):
            pairs.append(Pair(sn[k], st[k], None, [Check("name", "", None, sn[k], False)]))
        for k in range(j1, j2):
            pairs.append(Pair(on[k], None, ev[k], [Check("name", "", on[k], None, False)]))
    return pairs


def compare(
    strace: Sequence[StraceCall], ours: Sequence[Any], table: dict[str, SyscallDef]
) -> list[Pair]:
    pairs = align(strace, ours)
    for p in pairs:
        if p.strace is not None and p.ours is not None:
            p.checks = compare_call(p.strace, p.ours, table.get(p.name))
    return pairs


# --------------------------------------------------------------------------- run


@dataclass
class Result:
    pairs: list[Pair]
    table: dict[str, SyscallDef]
    syscalls: list[str]
    seconds: float

    def distinct_seen_by_both(self) -> set[str]:
        return {p.name for p in self.pairs if p.strace is not None and p.ours is not None}

    def rate(self, category: str) -> tuple[int, int]:
        checks = [c for p in self.pairs for c in p.checks if c.category == category]
        return sum(c.ok for c in checks), len(checks)

    def failures(self, categories: Iterable[str] = CATEGORIES) -> list[tuple[Pair, Check]]:
        cats = set(categories)
        return [(p, c) for p in self.pairs for c in p.failed() if c.category in cats]


def compile_prog(out_dir: Path, src: Path = PROG_SRC) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler (gcc)")
    out = out_dir / "conformance"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(src)], check=True)
    return out


def _fresh(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    return d


def run(base: Path, prog: Path | None = None) -> Result:
    """Compiles (unless ``prog`` is given), runs both tracers, compares."""
    t0 = time.monotonic()
    if prog is None:
        prog = compile_prog(base)
    syscalls = traced_syscalls()
    work = base / "work"  # the same path for both runs: identical strings and lengths
    st = run_strace(prog, _fresh(work), syscalls)
    ours = run_syshub(prog, _fresh(work), syscalls)
    table = load_table()
    pairs = compare(st, ours, table)
    return Result(pairs, table, syscalls, time.monotonic() - t0)


# --------------------------------------------------------------------------- report


def _short(v: Any, n: int = 60) -> str:
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def report(res: Result) -> str:
    """A per-syscall table of match results, the mismatches and overall rates."""
    by: dict[str, list[Pair]] = {}
    for p in res.pairs:
        by.setdefault(p.name, []).append(p)
    lines = [
        f"{'syscall':<18} {'calls':>5}  {'name':>5} {'ret':>5} {'errno':>5} "
        f"{'paths':>5} {'flags':>5} {'addr':>5}  result",
    ]
    for name in sorted(by):
        ps = by[name]
        cells = []
        for cat in CATEGORIES:
            cs = [c for p in ps for c in p.checks if c.category == cat]
            cells.append(f"{sum(c.ok for c in cs)}/{len(cs)}" if cs else "-")
        bad = sorted(
            {f"{c.category}:{c.arg}" if c.arg else c.category for p in ps for c in p.failed()}
        )
        lines.append(
            f"{name:<18} {len(ps):>5}  "
            + " ".join(f"{c:>5}" for c in cells)
            + "  "
            + ("match" if not bad else "MISMATCH " + ",".join(bad))
        )
    lines.append("")
    fails = res.failures()
    if fails:
        lines.append("mismatches (ours | strace):")
        for p, c in fails:
            where = f"{p.name} {c.category}" + (f" {c.arg}" if c.arg else "")
            lines.append(f"  {where}: {_short(c.ours)} | {_short(c.strace)}")
            if p.strace is not None:
                lines.append(f"      strace: {_short(p.strace.text, 140)}")
            if p.ours is not None:
                lines.append(f"      syshub: {_short(p.ours.to_text(), 140)}")
        lines.append("")
    seen = res.distinct_seen_by_both()
    lines.append(
        f"{len(res.pairs)} calls, {len(seen)} distinct syscalls seen by both "
        f"({len(res.syscalls)} traced), {res.seconds:.1f}s"
    )
    for cat in CATEGORIES:
        ok, n = res.rate(cat)
        pct = 100.0 * ok / n if n else 100.0
        lines.append(f"  {cat:<7} {ok:>4}/{n:<4} {pct:6.1f}%")
    allok = sum(p.ok for p in res.pairs)
    lines.append(f"  calls fully matching: {allok}/{len(res.pairs)}")
    return "\n".join(lines)


def main() -> int:
    if os.geteuid() != 0:
        print("needs root (eBPF, pid namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="syshub-conformance-") as d:
        res = run(Path(d))
    print(report(res))
    return 0 if not res.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
