"""Consistency checks for the syscall and errno tables in bpf-rs/data.

The tables are parsed directly (no syshub import, no privileges). Checks against the
running system (asm/unistd_64.h, tracefs) are skipped when those are not available.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "bpf-rs" / "data"
SYSCALLS_TSV = DATA_DIR / "syscalls_x86_64.tsv"
ERRNO_TSV = DATA_DIR / "errno.tsv"
UNISTD_64_H = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
TRACEFS_SYSCALL_DIRS = (
    Path("/sys/kernel/tracing/events/syscalls"),
    Path("/sys/kernel/debug/tracing/events/syscalls"),
)

CLASSES = {
    "FileSystem",
    "Network",
    "Time",
    "System",
    "Signals",
    "IPC",
    "ProcessManagement",
}
# Groups inherited from swoll (spellings are metric label values and must not change).
SWOLL_GROUPS = {
    "FileSystem": {
        "Files",
        "Directories",
        "Links",
        "BasicAttributes",
        "ExtendedAttributes",
        "Descriptors",
        "ReadWrite",
        "SynchronizedIO",
        "AsynchronousIO",
        "MultiplexedIO",
        "Monitoring",
        "MiscellaneousFiles",
    },
    "Network": {"Sockets", "IO", "Naming", "Filtering"},
    "Time": {
        "TimeOfDay",
        "POSIXClocks",
        "ClockTimers",
        "SysTimers",
        "FileDescriptorTimers",
        "MiscellaneousTime",
    },
    "System": {
        "Kernel",
        "Accounting",
        "PrivlidgedFileSystem",
        "UnprivledgedFileSystem",
        "MiscellaneousSystem",
    },
    "Signals": {"Standard", "RealTime", "FileDescriptor", "MiscellaneousSignals"},
    "IPC": {"Pipes", "SharedMemory", "Semaphore", "Futex", "MessageQueues"},
    "ProcessManagement": {
        "Execution",
        "Process",
        "Session",
        "Group",
        "User",
        "Namespace",
        "Scheduling",
        "Resources",
        "VirtualMemory",
        "Threading",
        "MiscellaneousPM",
    },
}

VOCAB_RE = re.compile(r"^#\s*@(\w+)\s+([^:\s]+):\s*(.*)$")
CAPTURE_RE = re.compile(r"^(\w+)(?:\(([^)]*)\))?$")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
# Capture types and the shape of their parameter list.
CAPTURE_PARAMS = {
    "str": (),
    "strv": (),
    "buf_out": (),
    "str_out": (),
    "msghdr_in": (),
    "msghdr_out": (),
    "buf_in": ("index",),
    "sockaddr_in": ("index",),
    "sockaddr_out": ("index",),
    "struct_in": ("struct",),
    "struct_out": ("struct",),
    "struct_array_out": ("struct",),
    "struct_in_len": ("struct", "index"),
    "struct_out_lenptr": ("struct", "index"),
}
# Render types an argument used as a length by buf_in/sockaddr_in/struct_in_len may have.
LENGTH_TYPES = {"int", "uint", "long", "ulong", "size"}


@dataclass(frozen=True)
class Arg:
    name: str
    type: str


@dataclass(frozen=True)
class Syscall:
    lineno: int
    nr: int
    name: str
    klass: str
    group: str
    ret: str
    tp: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Vocabulary:
    classes: dict[str, set[str]]
    rets: set[str]
    renders: set[str]
    captures: set[str]
    structs: set[str]


def _data_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        out.append((lineno, line))
    return out


def _parse_vocabulary(path: Path) -> Vocabulary:
    vocab = Vocabulary(classes={}, rets=set(), renders=set(), captures=set(), structs=set())
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            continue
        m = VOCAB_RE.match(line)
        if not m:
            continue
        kind, name, text = m.groups()
        if kind == "class":
            vocab.classes[name] = set(text.split())
        elif kind == "ret":
            vocab.rets.add(name)
        elif kind == "render":
            vocab.renders.add(name)
        elif kind == "capture":
            vocab.captures.add(name.split("(", 1)[0])
        elif kind == "struct":
            vocab.structs.add(name)
        else:
            raise AssertionError(f"unknown vocabulary kind @{kind} in {line!r}")
    return vocab


def _parse_args(field: str) -> tuple[Arg, ...]:
    if field == "-":
        return ()
    args = []
    for item in field.split(";"):
        name, sep, typ = item.partition(":")
        assert sep, f"argument {item!r} is not name:type"
        args.append(Arg(name, typ))
    return tuple(args)


def _parse_syscalls() -> list[Syscall]:
    rows = []
    for lineno, line in _data_lines(SYSCALLS_TSV):
        cols = line.split("\t")
        assert len(cols) == 7, f"line {lineno}: {len(cols)} columns: {line!r}"
        nr, name, klass, group, ret, tp, args = cols
        assert nr.isdigit(), f"line {lineno}: nr {nr!r}"
        rows.append(Syscall(lineno, int(nr), name, klass, group, ret, tp, _parse_args(args)))
    return rows


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return _parse_vocabulary(SYSCALLS_TSV)


@pytest.fixture(scope="module")
def syscalls() -> list[Syscall]:
    return _parse_syscalls()


@pytest.fixture(scope="module")
def by_name(syscalls: list[Syscall]) -> dict[str, Syscall]:
    return {sc.name: sc for sc in syscalls}


def test_every_line_has_seven_columns() -> None:
    lines = _data_lines(SYSCALLS_TSV)
    assert lines, "no data lines"
    for lineno, line in lines:
        assert line.count("\t") == 6, f"line {lineno}: expected 7 TAB-separated columns"
        assert all(col.strip() == col and col for col in line.split("\t")), f"line {lineno}"


def test_numbers_and_names_unique(syscalls: list[Syscall]) -> None:
    nrs = [sc.nr for sc in syscalls]
    names = [sc.name for sc in syscalls]
    assert len(nrs) == len(set(nrs)), sorted(n for n in set(nrs) if nrs.count(n) > 1)
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
    assert nrs == sorted(nrs), "table must be sorted by number"
    for sc in syscalls:
        assert NAME_RE.match(sc.name), f"line {sc.lineno}: bad name {sc.name!r}"
        assert not sc.name.startswith("sys_"), f"line {sc.lineno}: sys_ prefix"


def test_number_ranges_complete(syscalls: list[Syscall]) -> None:
    nrs = {sc.nr for sc in syscalls}
    low = {n for n in nrs if n < 424}
    high = {n for n in nrs if n >= 424}
    assert low == set(range(max(low) + 1)), "gap in the 0.. range"
    assert high == set(range(424, max(high) + 1)), "gap in the 424.. range"
    assert max(low) >= 334 and max(high) >= 469
    # x32-only numbers (512..547) are not part of the x86_64 table.
    assert not any(512 <= n <= 547 for n in nrs)


def test_classes_documented(vocab: Vocabulary) -> None:
    assert set(vocab.classes) == CLASSES
    for klass, groups in SWOLL_GROUPS.items():
        missing = groups - vocab.classes[klass]
        assert not missing, f"swoll groups missing from {klass}: {missing}"


def test_class_and_group_valid(syscalls: list[Syscall], vocab: Vocabulary) -> None:
    for sc in syscalls:
        assert sc.klass in vocab.classes, f"line {sc.lineno}: class {sc.klass!r}"
        assert sc.group in vocab.classes[sc.klass], (
            f"line {sc.lineno}: group {sc.group!r} not in class {sc.klass!r}"
        )


def test_every_documented_group_used(syscalls: list[Syscall], vocab: Vocabulary) -> None:
    used = {(sc.klass, sc.group) for sc in syscalls}
    for klass, groups in vocab.classes.items():
        for group in groups:
            assert (klass, group) in used, f"{klass}/{group} documented but unused"


def test_ret_valid(syscalls: list[Syscall], vocab: Vocabulary) -> None:
    assert vocab.rets >= {"int", "fd", "pid", "size", "long", "ptr", "noreturn", "uint", "hex"}
    for sc in syscalls:
        assert sc.ret in vocab.rets, f"line {sc.lineno}: ret {sc.ret!r}"


def test_tp_column(syscalls: list[Syscall]) -> None:
    for sc in syscalls:
        assert sc.tp == "-" or NAME_RE.match(sc.tp), f"line {sc.lineno}: tp {sc.tp!r}"
        if sc.tp == "-":
            assert not sc.args, f"line {sc.lineno}: no tracepoint but arguments listed"
    tps = [sc.tp for sc in syscalls if sc.tp != "-"]
    assert len(tps) == len(set(tps)), "two syscalls share a tracepoint"


def _check_capture(
    sc: Syscall, idx: int, arg: Arg, base: str, params: str | None, vocab: Vocabulary
) -> None:
    where = f"line {sc.lineno} ({sc.name} arg {idx} {arg.name})"
    shape = CAPTURE_PARAMS.get(base)
    assert shape is not None, f"{where}: capture {base!r} has no known parameter shape"
    values = [] if params is None else [p.strip() for p in params.split(",")]
    assert len(values) == len(shape), f"{where}: {arg.type!r} expects parameters {shape}"
    for kind, value in zip(shape, values, strict=True):
        if kind == "struct":
            assert value in vocab.structs, f"{where}: struct {value!r} not documented"
            continue
        assert value.isdigit(), f"{where}: index {value!r} is not a number"
        ref = int(value)
        assert 0 <= ref < len(sc.args), f"{where}: index {ref} out of range"
        assert ref != idx, f"{where}: index refers to the argument itself"
        ref_type = sc.args[ref].type
        if base in ("sockaddr_out", "struct_out_lenptr"):
            assert ref_type == "ptr", f"{where}: socklen pointer arg has type {ref_type!r}"
        else:
            assert ref_type in LENGTH_TYPES, f"{where}: length arg has type {ref_type!r}"


def test_arg_types_in_vocabulary(syscalls: list[Syscall], vocab: Vocabulary) -> None:
    assert not (vocab.renders & vocab.captures), "type both render and capture"
    for sc in syscalls:
        names = [a.name for a in sc.args]
        assert len(names) == len(set(names)), f"line {sc.lineno}: duplicate argument names"
        assert len(sc.args) <= 6, f"line {sc.lineno}: more than 6 arguments"
        for idx, arg in enumerate(sc.args):
            assert NAME_RE.match(arg.name), f"line {sc.lineno}: bad arg name {arg.name!r}"
            if arg.type in vocab.renders:
                continue
            m = CAPTURE_RE.match(arg.type)
            assert m, f"line {sc.lineno}: malformed type {arg.type!r}"
            base, params = m.groups()
            assert base in vocab.captures, (
                f"line {sc.lineno} ({sc.name}): type {arg.type!r} not in the header vocabulary"
            )
            _check_capture(sc, idx, arg, base, params, vocab)


def test_buf_out_needs_size_return(syscalls: list[Syscall]) -> None:
    for sc in syscalls:
        if any(a.type == "buf_out" for a in sc.args):
            assert sc.ret == "size", f"line {sc.lineno}: buf_out needs a byte-count return"


EXPECTED_TYPES = {
    "open": {"filename": "str", "flags": "open_flags", "mode": "mode"},
    "openat": {"dfd": "dirfd", "filename": "str", "flags": "open_flags"},
    "openat2": {"filename": "str", "how": "struct_in_len(open_how,3)"},
    "execve": {"filename": "str", "argv": "strv", "envp": "ptr"},
    "execveat": {"filename": "str", "argv": "strv", "envp": "ptr"},
    "connect": {"uservaddr": "sockaddr_in(2)"},
    "accept4": {"upeer_sockaddr": "sockaddr_out(2)"},
    "sendto": {"buff": "buf_in(2)", "addr": "sockaddr_in(5)"},
    "recvfrom": {"ubuf": "buf_out", "addr": "sockaddr_out(5)"},
    "read": {"buf": "buf_out"},
    "write": {"buf": "buf_in(2)"},
    "clone": {"clone_flags": "clone_flags", "newsp": "ptr", "tls": "ptr"},
    "clone3": {"uargs": "struct_in_len(clone_args,1)"},
    "prlimit64": {"new_rlim": "struct_in(rlimit)", "old_rlim": "struct_out(rlimit)"},
    "mount": {"dev_name": "str", "dir_name": "str", "type": "str", "flags": "mount_flags"},
    "readlinkat": {"pathname": "str", "buf": "buf_out"},
    "getcwd": {"buf": "str_out"},
    "bpf": {"cmd": "bpf_cmd"},
    "memfd_create": {"uname": "str"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_key_argument_types(by_name: dict[str, Syscall], name: str) -> None:
    got = {a.name: a.type for a in by_name[name].args}
    for arg, typ in EXPECTED_TYPES[name].items():
        assert got.get(arg) == typ, f"{name}.{arg}: {got.get(arg)!r} != {typ!r}"


def test_clone_argument_order(by_name: dict[str, Syscall]) -> None:
    # x86_64 passes clone(flags, newsp, parent_tidptr, child_tidptr, tls).
    names = [a.name for a in by_name["clone"].args]
    assert names == ["clone_flags", "newsp", "parent_tidptr", "child_tidptr", "tls"]


def test_renamed_tracepoints(by_name: dict[str, Syscall]) -> None:
    renamed = {
        "stat": "newstat",
        "lstat": "newlstat",
        "fstat": "newfstat",
        "uname": "newuname",
        "umount2": "umount",
        "sendfile": "sendfile64",
    }
    for name, tp in renamed.items():
        assert by_name[name].tp == tp, name
    for name in ("tuxcall", "afs_syscall", "uselib", "lookup_dcookie", "vserver"):
        assert by_name[name].tp == "-", name


def test_pointer_returns(by_name: dict[str, Syscall]) -> None:
    for name in ("brk", "mmap", "mremap", "shmat"):
        assert by_name[name].ret == "ptr", name
    for name in ("exit", "exit_group", "rt_sigreturn"):
        assert by_name[name].ret == "noreturn", name


def test_matches_unistd_64_header(syscalls: list[Syscall]) -> None:
    if not UNISTD_64_H.is_file():
        pytest.skip(f"{UNISTD_64_H} not present")
    table = {sc.name: sc.nr for sc in syscalls}
    seen = 0
    for line in UNISTD_64_H.read_text().splitlines():
        m = re.match(r"#define\s+__NR_(\w+)\s+(\d+)\s*$", line)
        if not m:
            continue
        seen += 1
        name, nr = m.group(1), int(m.group(2))
        assert table.get(name) == nr, f"__NR_{name} = {nr}, table has {table.get(name)}"
    assert seen > 300, f"only {seen} __NR_ entries parsed from {UNISTD_64_H}"


def _tracefs_dir() -> Path:
    for path in TRACEFS_SYSCALL_DIRS:
        try:
            if path.is_dir() and any(path.glob("sys_enter_*")):
                return path
        except OSError:
            continue
    pytest.skip("tracefs syscall events not available or not readable")


def _tracefs_args(fmt: Path) -> list[str]:
    names = []
    for line in fmt.read_text().splitlines():
        m = re.match(r"\s*field:(.*?);", line)
        if not m:
            continue
        name = re.split(r"[\s*]", m.group(1).strip())[-1]
        if name.startswith("common_") or name == "__syscall_nr":
            continue
        names.append(name)
    return names


def test_argument_counts_match_tracefs(syscalls: list[Syscall]) -> None:
    events = _tracefs_dir()
    checked = 0
    mismatches = []
    for sc in syscalls:
        if sc.tp == "-":
            continue
        fmt = events / f"sys_enter_{sc.tp}" / "format"
        try:
            if not fmt.is_file():
                continue
            names = _tracefs_args(fmt)
        except PermissionError:
            pytest.skip(f"{fmt} is not readable")
        checked += 1
        if len(names) != len(sc.args):
            mismatches.append(f"{sc.name}: tracefs {names}, table {[a.name for a in sc.args]}")
    if checked == 0:
        pytest.skip("no tracefs format file matched a table entry")
    assert not mismatches, "\n".join(mismatches)


def _parse_errno() -> list[tuple[int, str, str, str]]:
    rows = []
    for lineno, line in _data_lines(ERRNO_TSV):
        cols = line.split("\t")
        assert len(cols) == 4, f"errno line {lineno}: {len(cols)} columns: {line!r}"
        number, name, message, aliases = cols
        assert number.isdigit(), f"errno line {lineno}: {number!r}"
        assert re.match(r"^E[A-Z0-9_]+$", name), f"errno line {lineno}: {name!r}"
        assert message, f"errno line {lineno}: empty message"
        rows.append((int(number), name, message, aliases))
    return rows


def test_errno_table() -> None:
    rows = _parse_errno()
    numbers = [r[0] for r in rows]
    assert len(numbers) == len(set(numbers)), "duplicate errno numbers"
    names = [r[1] for r in rows]
    for r in rows:
        if r[3] != "-":
            names.extend(r[3].split(","))
    assert len(names) == len(set(names)), "duplicate errno names or aliases"
    by_name = {r[1]: r[0] for r in rows}
    assert by_name["ENOENT"] == 2
    assert by_name["EAGAIN"] == 11
    assert by_name["ENOTSUPP"] == 524
    missing = set(range(1, 134)) - {41, 58} - set(numbers)
    assert not missing, f"missing errno numbers {sorted(missing)}"
    assert 41 not in numbers and 58 not in numbers
    aliases = {r[1]: r[3] for r in rows}
    assert "EWOULDBLOCK" in aliases["EAGAIN"].split(",")
    assert "EDEADLOCK" in aliases["EDEADLK"].split(",")
    assert "ENOTSUP" in aliases["EOPNOTSUPP"].split(",")
