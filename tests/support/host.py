"""Host-side clean-up for the private containerd: mounts, cgroups, stray processes."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger("syshub.tests.containerd")


def mountinfo() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount in our mount namespace."""
    out: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) < 5 or not right:
                continue
            point = fields[4].encode().decode("unicode_escape")
            out.append((point, right.split()[0]))
    return out


def cgroup_roots() -> list[Path]:
    return [Path(p) for p, fs in mountinfo() if fs in ("cgroup", "cgroup2")]


_libc = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2


def umount_lazy(path: str) -> None:
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            log.warning("umount %s: %s", path, os.strerror(err))


def overlay_works(base: Path) -> bool:
    """Can we mount overlayfs with upper/work dirs on ``base``'s filesystem?"""
    probe = base / "overlay-probe"
    dirs = {n: probe / n for n in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    try:
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
            capture_output=True,
            timeout=10,
        )
        ok = result.returncode == 0
        if ok:
            umount_lazy(str(dirs["merged"]))
        return ok
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def kill_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def pids_with_arg(needle: str) -> list[int]:
    """Pids whose command line contains ``needle`` as a whole argument."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if needle.encode() in args:
            out.append(int(entry))
    return out


def remove_cgroup_tree(root: Path) -> list[str]:
    """Kill every process in the cgroup subtree ``root`` then rmdir it bottom-up."""
    problems: list[str] = []
    if not root.is_dir():
        return problems
    dirs = sorted((p for p in [root, *root.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts))
    for d in dirs:
        with contextlib.suppress(OSError):
            for pid in (d / "cgroup.procs").read_text().split():
                kill_pid(int(pid))
    for d in dirs:
        for attempt in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 49:
                    problems.append(f"rmdir {d}: {exc.strerror}")
                    break
                time.sleep(0.02)
    return problems
