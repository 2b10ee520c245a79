"""A/B of the metrics program's BPF cost per syscall across versions of
``bpf-rs/bpf/metrics.bpf.c`` (issue 12's latency path).

Each version (a git revision, or ``worktree``) is compiled with clang-19 as
the build does, loaded with libbpf (its globals at their defaults: node mode,
latency on), its hooks attached (exits, context switch, entry: the loader's
order; the bare pair is not loaded), and a getppid loop pinned to one CPU runs
while ``kernel.bpf_stats_enabled`` is on. The cost per syscall is the time of
all its programs over the runs of the exit program. Versions alternate per
round; medians over rounds. The sysctl is restored afterwards. ``--pipe N``
runs ``perf bench sched pipe`` instead (a context switch every call or so).

    python -m benches.metrics_ab --rounds 7 --secs 1 HEAD~1 worktree
    python -m benches.metrics_ab --rounds 7 --pipe 200000 HEAD~1 worktree
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from benches import bpfstats

ROOT = Path(__file__).resolve().parents[1]
BPF_DIR = "bpf-rs/bpf"
HEADERS = ("metrics_abi.h", "kernel.h")
ORDER = {"syshub_mx_exit": 0, "syshub_mx_task_exit": 1, "syshub_mx_switch": 2, "syshub_mx_enter": 3}


def _source(rev: str, name: str) -> bytes:
    if rev == "worktree":
        return (ROOT / BPF_DIR / name).read_bytes()
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{BPF_DIR}/{name}"], capture_output=True, check=True
    ).stdout


def build(rev: str, out: Path) -> Path:
    """The object of ``rev``'s metrics.bpf.c (with that revision's headers)."""
    d = out / rev.replace("/", "_").replace("~", "-")
    d.mkdir()
    for name in ("metrics.bpf.c", *HEADERS):
        (d / name).write_bytes(_source(rev, name))
    obj = d / "metrics.bpf.o"
    cmd = ["clang-19", "-target", "bpf", "-O2", "-g", "-Wall", "-Werror"]
    cmd += ["-I/usr/include/x86_64-linux-gnu", "-c", str(d / "metrics.bpf.c"), "-o", str(obj)]
    subprocess.run(cmd, check=True)
    return obj


def _libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL("libbpf.so.1")
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    for name, res, args in (
        ("bpf_object__open_file", vp, [cp, vp]),
        ("bpf_object__next_program", vp, [vp, vp]),
        ("bpf_program__name", cp, [vp]),
        ("bpf_program__set_autoload", ctypes.c_int, [vp, ctypes.c_bool]),
        ("bpf_object__load", ctypes.c_int, [vp]),
        ("bpf_program__attach", vp, [vp]),
        ("bpf_link__destroy", ctypes.c_int, [vp]),
        ("bpf_object__close", None, [vp]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def measure(lib: ctypes.CDLL, obj_path: Path, workload: list[str]) -> float:
    """BPF ns per syscall of one load of ``obj_path`` over the loop."""
    before = bpfstats.all_ids()
    obj = lib.bpf_object__open_file(str(obj_path).encode(), None)
    if not obj:
        raise RuntimeError(f"libbpf cannot open {obj_path}")
    links: list[int] = []
    try:
        progs: list[tuple[int, int]] = []
        p = lib.bpf_object__next_program(obj, None)
        while p:
            name = lib.bpf_program__name(p).decode()
            if name in ORDER:
                progs.append((ORDER[name], p))
            else:
                lib.bpf_program__set_autoload(p, False)
            p = lib.bpf_object__next_program(obj, p)
        if lib.bpf_object__load(obj) != 0:
            raise RuntimeError(f"libbpf cannot load {obj_path}")
        for _, prog in sorted(progs):
            link = lib.bpf_program__attach(prog)
            if not link:
                raise RuntimeError(f"cannot attach a program of {obj_path}")
            links.append(link)
        ours = bpfstats.all_ids() - before
        with bpfstats.stats_enabled():
            start = bpfstats.run_costs(ours)
            subprocess.run(workload, check=True, stdout=subprocess.DEVNULL)
            end = bpfstats.run_costs(ours)
    finally:
        for link in reversed(links):
            lib.bpf_link__destroy(link)
        lib.bpf_object__close(obj)
    delta = bpfstats.run_delta(start, end)
    spent = sum(v["runs"] * v["ns_per_run"] for v in delta.values())
    return spent / delta["syshub_mx_exit"]["runs"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("versions", nargs="+", help="git revisions or 'worktree'")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--secs", type=float, default=1.0)
    ap.add_argument("--cpu", type=int, default=1, help="CPU the loop is pinned to")
    ap.add_argument(
        "--pipe",
        type=int,
        metavar="N",
        help="instead of the getppid loop: `perf bench sched pipe -l N` (a context "
        "switch per call or so: the worst case of the switch hook)",
    )
    args = ap.parse_args(argv)
    why = bpfstats.available()
    if why is not None:
        raise SystemExit(f"metrics_ab: {why}")
    lib = _libbpf()
    with tempfile.TemporaryDirectory(prefix="metrics-ab-") as tmp:
        out = Path(tmp)
        loop = out / "metrics_calls"
        cc = shutil.which("gcc") or "cc"
        src = ROOT / "tests/progs/metrics_calls.c"
        subprocess.run([cc, "-O2", "-static", "-o", str(loop), str(src)], check=True)
        objs = {v: build(v, out) for v in args.versions}
        workload = ["taskset", "-c", str(args.cpu), str(loop), "loop", str(args.secs)]
        if args.pipe:
            workload = ["perf", "bench", "sched", "pipe", "-l", str(args.pipe)]
        ns: dict[str, list[float]] = {v: [] for v in args.versions}
        for _ in range(args.rounds):
            for v, obj in objs.items():
                ns[v].append(measure(lib, obj, workload))
    for v, xs in ns.items():
        runs = " / ".join(f"{x:.1f}" for x in xs)
        print(f"{v}: median {statistics.median(xs):.1f} BPF ns per syscall (rounds: {runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
