"""The metrics tests' C workload (tests/progs/metrics_calls.c), compiled once
per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROGS = Path(__file__).resolve().parents[1] / "progs"
_built: list[Path] = []


def build_metrics_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if _built:
        return _built[0]
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler (gcc) to build tests/progs/metrics_calls.c")
    out = tmp_path_factory.mktemp("progs") / "metrics_calls"
    src = PROGS / "metrics_calls.c"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(src)], check=True)
    _built.append(out)
    return out
