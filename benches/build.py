"""Compiles the C workload, the libbpf ceiling and the hook floor into a
cache directory, keyed by a hash of the sources and flags, so reruns skip the
compilers."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOOP_SRC = HERE / "workloads" / "loop.c"
CEILING_DIR = HERE / "ceiling"
ARCH_INCLUDE = "/usr/include/x86_64-linux-gnu"


class BuildError(Exception):
    pass


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syshub-benches"


def _digest(paths: list[Path], argv: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update("\0".join(argv).encode())
    return h.hexdigest()[:16]


def _run(argv: list[str], what: str) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(argv)}):\n{r.stderr.strip()}")


def build_loop(cache_dir: Path) -> Path:
    """The workload generator, static, -O2."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BuildError("no C compiler (gcc) for benches/workloads/loop.c")
    flags = ["-O2", "-static", "-Wall", "-Wextra"]
    out = cache_dir / f"loop-{_digest([LOOP_SRC], flags)}"
    if not out.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        _run([cc, *flags, "-o", str(tmp), str(LOOP_SRC)], "compiling the workload")
        tmp.rename(out)
    return out


def _bpf_toolchain() -> tuple[str, str]:
    """(clang, cc) for a libbpf program; raises BuildError with the reason
    when clang, gcc or the libbpf headers are missing."""
    clang = next((c for c in ("clang-19", "clang") if shutil.which(c)), None)
    cc = shutil.which("gcc") or shutil.which("cc")
    if clang is None:
        raise BuildError("clang-19 (or clang) not installed")
    if cc is None:
        raise BuildError("gcc not installed")
    if not Path("/usr/include/bpf/libbpf.h").exists():
        raise BuildError("libbpf headers missing (apt-get install libbpf-dev)")
    return clang, cc


def _build_libbpf_pair(cache_dir: Path, name: str) -> tuple[Path, Path]:
    """(loader binary, BPF object) from benches/ceiling/<name>.bpf.c, <name>.c
    and <name>.h."""
    clang, cc = _bpf_toolchain()
    bpf_src = CEILING_DIR / f"{name}.bpf.c"
    user_src = CEILING_DIR / f"{name}.c"
    header = CEILING_DIR / f"{name}.h"
    bpf_flags = ["-target", "bpf", "-O2", "-g", f"-I{ARCH_INCLUDE}", f"-I{CEILING_DIR}"]
    user_flags = ["-O2", "-Wall", "-Wextra", f"-I{CEILING_DIR}"]
    key = _digest([bpf_src, user_src, header], [clang, *bpf_flags, *user_flags])
    obj = cache_dir / f"{name}-{key}.bpf.o"
    exe = cache_dir / f"{name}-{key}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not obj.exists():
        tmp = obj.with_suffix(".tmp")
        _run([clang, *bpf_flags, "-c", str(bpf_src), "-o", str(tmp)], f"compiling {name}.bpf.c")
        tmp.rename(obj)
    if not exe.exists():
        tmp = exe.with_suffix(".tmp")
        _run([cc, *user_flags, "-o", str(tmp), str(user_src), "-lbpf"], f"building {name}.c")
        tmp.rename(exe)
    return exe, obj


def build_ceiling(cache_dir: Path) -> tuple[Path, Path]:
    """(consumer binary, BPF object) of the libbpf ceiling; raises BuildError
    with the reason when clang, libbpf or the headers are missing."""
    return _build_libbpf_pair(cache_dir, "ceiling")


def build_floor(cache_dir: Path) -> tuple[Path, Path]:
    """(loader binary, BPF object) of the count-only hook floor (issue 15);
    raises BuildError as build_ceiling does."""
    return _build_libbpf_pair(cache_dir, "floor")
