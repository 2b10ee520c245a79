"""Runs the C workload (benches/workloads/loop.c) as PID 1 of its own pid
namespace, held before exec until :meth:`Loop.start`, and parses the JSON line
it prints about its own rate."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from benches.common import Context
from syshub.nsproc import NamespacedProcess

BENCH_FILE = Path("/dev/shm/syshub-bench-file")
REFUSED_PORT = 1  # tcpmux: nobody listens there, so connect() is refused quickly


class WorkloadError(Exception):
    pass


@dataclass
class LoopReport:
    """What the workload measured itself (clock_gettime inside the program)."""

    mode: str
    iterations: int
    calls: int
    secs: float
    iterations_per_s: float
    calls_per_s: float
    ns_per_iteration: float
    failures: int
    cpu: int

    @classmethod
    def parse(cls, text: str) -> LoopReport:
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                d: dict[str, Any] = json.loads(line)
                return cls(**{k: d[k] for k in cls.__dataclass_fields__})
        raise WorkloadError(f"workload printed no JSON line: {text[-500:]!r}")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def loop_argv(
    ctx: Context,
    mode: str,
    *,
    secs: float | None = None,
    count: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    argv = [str(ctx.loop_bin), mode]
    if count is not None:
        argv += ["--count", str(count)]
    elif secs is not None:
        argv += ["--secs", f"{secs:.3f}"]
    if ctx.settings.loop_cpu is not None:
        argv += ["--cpu", str(ctx.settings.loop_cpu)]
    if mode == "openclose":
        BENCH_FILE.touch()
        argv += ["--path", str(BENCH_FILE)]
    if mode == "connect":
        argv += ["--port", str(REFUSED_PORT)]
    return [*argv, *extra]


class Loop:
    """One workload run in a new pid namespace. ``wrapper`` (e.g. strace)
    runs as PID 1 and the workload as its child."""

    def __init__(
        self,
        ctx: Context,
        mode: str,
        *,
        secs: float | None = None,
        count: int | None = None,
        extra: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ) -> None:
        self.mode = mode
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        argv = [*wrapper, *loop_argv(ctx, mode, secs=secs, count=count, extra=extra)]
        try:
            self.proc = NamespacedProcess(argv, stdin=subprocess.DEVNULL, stdout=self._out)
        except BaseException:
            self._out.close()
            raise
        self.pid: int = self.proc.pid
        self.pid_ns: int = self.proc.pid_ns

    def start(self) -> None:
        self.proc.release()

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float = 120.0) -> LoopReport:
        """Wait for the workload and return its own report."""
        status = self.proc.wait(timeout=timeout)
        self._out.seek(0)
        text = self._out.read().decode(errors="replace")
        if status != 0:
            raise WorkloadError(f"workload {self.mode} exited with {status}: {text[-500:]!r}")
        return LoopReport.parse(text)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._out.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(
        self,
        t: type[BaseException] | None,
        v: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_untraced(ctx: Context, mode: str, secs: float) -> LoopReport:
    """The workload alone, in its own namespace, nothing attached by us."""
    with Loop(ctx, mode, secs=secs) as loop:
        loop.start()
        return loop.finish()
