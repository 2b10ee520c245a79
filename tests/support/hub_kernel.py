"""Scaffolding for the Hub's kernel tests (root + BPF): jobs that wait
until applied, the probe's filter map, containers for namespaced processes, a
consumer thread, and a pid namespace making getppid calls on demand."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from syshub import Hub, Job, Subscription, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container


def run_job(hub: Hub, trace: Trace | Job, **kw: Any) -> Job:
    """Run ``trace`` (or a job made beforehand, e.g. to subscribe to it
    first) and wait until its filters are in (its observer follows)."""
    job = hub.run_job(trace) if isinstance(trace, Job) else hub.run_trace(trace, **kw)
    assert hub.wait_applied(job, timeout=5), f"job {job.job_id} never applied"
    return job


def kernel_filters(hub: Hub) -> dict[tuple[int, int], int]:
    assert hub.probe is not None
    return {(f.pid_ns, f.nr): f.sample_rate for f in hub.probe.filters()}


def container(name: str, child: NamespacedProcess, pod: str = "p1") -> Container:
    return Container(
        id=f"id-{name}",
        name=name,
        pid=child.pid,
        pid_ns=child.pid_ns,
        pod=pod,
        namespace="default",
        labels={"app": "demo"},
    )


class Collector:
    """Drains a subscription on a thread (a consumer that keeps up)."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.events: list[Any] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            # Read before the get: a queue closed by then holds its last
            # events already, so an empty get after it means all were taken
            # (checked after the get, events routed and closed meanwhile
            # would be left behind).
            closed = self.sub.closed
            batch = self.sub.get_batch(4096, timeout=0.05)
            if batch:
                with self._lock:
                    self.events.extend(batch)
            elif closed:
                return

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.events)

    def finish(self, timeout: float = 10.0) -> list[Any]:
        """Every event of a subscription that is (or is about to be) closed:
        waits until the thread has taken the last one and ended."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self.sub.name}: not closed in {timeout} s"
        return self.snapshot()

    def wait(self, pred: Callable[[list[Any]], bool], timeout: float = 10.0) -> list[Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            evs = self.snapshot()
            if pred(evs):
                return evs
            time.sleep(0.02)
        return self.snapshot()


@contextmanager
def getppid_box(known_calls: Path) -> Iterator[tuple[NamespacedProcess, Callable[[int], None]]]:
    """A pid namespace making one getppid per byte written: ``calls(n)``.

    It stays alive until the block ends, so its namespace inode cannot be
    reused by another process (and its calls reach our filters) while the
    filters are installed: stop the container inside the block."""
    child = NamespacedProcess([str(known_calls), "wait"], stdin=subprocess.PIPE)
    stdin = child._relay.stdin
    assert stdin is not None

    def calls(n: int) -> None:
        stdin.write(b"x" * n)
        stdin.flush()

    try:
        yield child, calls
    finally:
        stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_seq(hub: Hub, key: tuple[int, int], n: int, timeout: float = 10.0) -> None:
    """Wait until the kernel has numbered ``n`` calls of ``key``."""
    assert hub.probe is not None
    end = time.monotonic() + timeout
    while hub.probe.sequences().get(key, 0) < n:
        assert time.monotonic() < end, f"{key}: {hub.probe.sequences().get(key)} of {n} calls"
        time.sleep(0.01)


def ns_holds(inode: int) -> int:
    return sum(
        1
        for fd in os.listdir("/proc/self/fd")
        if _readlink(f"/proc/self/fd/{fd}") == f"pid:[{inode}]"
    )


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
