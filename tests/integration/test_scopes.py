"""Process scopes against the real kernel: a host process and its descendants
are traced under a scope id, nothing else is, and the scope's bookkeeping
(fork/exit hooks, dead pids) follows the processes. Other processes run on
this machine: every assertion picks events by the pids the test started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probe_helpers import drain
from syshub.nsproc import NamespacedProcess, pid_namespace_inode

pytestmark = pytest.mark.bpf

NR_GETPPID = 110
EVF_ANY_NS = 0x8
EVF_SCOPE = 0x10
N = 40

# Waits for `go` to exist, calls getppid N times, then (with "fork") forks a
# child that calls it N times too, and prints the child's pid.
WORKER = """
import os, sys, time
go, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
early = 0
if mode == "fork-early":
    early = os.fork()
    if early == 0:
        while not os.path.exists(go):
            time.sleep(0.005)
        for _ in range(n):
            os.getppid()
        os._exit(0)
while not os.path.exists(go):
    time.sleep(0.005)
for _ in range(n):
    os.getppid()
child = early
if mode == "fork":
    child = os.fork()
    if child == 0:
        for _ in range(n):
            os.getppid()
        os._exit(0)
if child:
    os.waitpid(child, 0)
print(child, flush=True)
"""

# Calls getppid every millisecond until killed.
SPINNER = "import os, time\nwhile True:\n    os.getppid(); time.sleep(0.001)\n"


def worker(go: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(go), str(N), mode], stdout=subprocess.PIPE, text=True
    )


def finish(p: subprocess.Popen[str]) -> int:
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    return int(out.strip())


@pytest.fixture
def spinner() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen([sys.executable, "-c", SPINNER])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def test_scope_traces_process_and_later_child_not_sibling(probe: Any, tmp_path: Path) -> None:
    go = tmp_path / "go"
    scoped, sibling = worker(go, "fork"), worker(go, "fork")
    try:
        scope = probe.add_scope(scoped.pid)
        assert 1 <= scope <= 65535
        assert probe.scopes() == [(scope, scoped.pid)]
        assert probe.scope_pids(scope) == [scoped.pid]
        assert probe.scope_hooked()
        probe.add_filter(scope, "getppid")
        go.touch()
        child = finish(scoped)
        sibling_child = finish(sibling)
        evs = [e for e in drain(probe) if e.nr == NR_GETPPID]
        host_ns = pid_namespace_inode()
        mine = [e for e in evs if e.tgid in (scoped.pid, child)]
        assert sum(e.tgid == scoped.pid for e in mine) == N
        assert sum(e.tgid == child for e in mine) == N
        assert {(e.key_ns, e.pid_ns) for e in mine} == {(scope, host_ns)}
        assert all(e.flags & EVF_SCOPE and not e.flags & EVF_ANY_NS for e in mine)
        assert not [e for e in evs if e.tgid in (sibling.pid, sibling_child)]
        # Nobody else is in the scope: the key counted exactly these calls.
        key = probe.stats().key(scope, NR_GETPPID)
        assert key.matched == 2 * N == len(mine)
        assert key.matched == key.delivered + key.dropped + key.sampled_out
        # The child exited: the exit hook took it out of the scope.
        assert child not in probe.scope_pids(scope)
        assert [e.seq for e in mine] == list(range(1, 2 * N + 1))
    finally:
        for p in (scoped, sibling):
            p.kill()
            p.wait()


def test_existing_descendants_join_the_scope(probe: Any, tmp_path: Path) -> None:
    go = tmp_path / "go"
    parent = worker(go, "fork-early")
    try:
        deadline = time.monotonic() + 10
        kids: list[int] = []
        while not kids and time.monotonic() < deadline:
            kids = [
                int(x)
                for x in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
            ]
        scope = probe.add_scope(parent.pid)
        assert probe.scope_pids(scope) == sorted([parent.pid, *kids])
        probe.add_filter(scope, "getppid")
        go.touch()
        (child,) = kids
        assert finish(parent) == child
        mine = [e for e in drain(probe) if e.tgid in (parent.pid, child) and e.nr == NR_GETPPID]
        assert sum(e.tgid == child for e in mine) == N
        assert {e.key_ns for e in mine} == {scope}
    finally:
        parent.kill()
        parent.wait()


def test_remove_scope_stops_delivery_and_detaches_hooks(
    probe: Any, spinner: subprocess.Popen[bytes]
) -> None:
    scope = probe.add_scope(spinner.pid)
    probe.add_filter(scope, "getppid")
    deadline = time.monotonic() + 10
    seen: list[Any] = []
    while not seen and time.monotonic() < deadline:
        seen = [e for e in probe.poll(timeout_ms=100) if e.tgid == spinner.pid]
    assert seen and all(e.key_ns == scope for e in seen)
    assert probe.remove_scope(scope) is True
    assert probe.remove_scope(scope) is False
    assert probe.scopes() == []
    assert probe.scope_pids(scope) == []
    assert not probe.scope_hooked()
    assert all(f.pid_ns != scope for f in probe.filters())
    assert all(nr != NR_GETPPID for nr, _ in probe.hooked())
    drain(probe)
    time.sleep(0.2)
    assert not [e for e in drain(probe) if e.tgid == spinner.pid]
    key = probe.stats().key(scope, NR_GETPPID)
    assert key.matched == key.delivered + key.dropped + key.sampled_out
    # Ids go round: a removed scope's id (and its counters) is not reused at once.
    again = probe.add_scope(spinner.pid)
    assert again == scope + 1 and probe.scope_hooked()


def test_scope_in_another_pid_namespace(probe: Any, known_calls: Path) -> None:
    """A process in a container-like pid namespace: keyed by the scope, its
    records still carry its real namespace."""
    with NamespacedProcess([str(known_calls), "getppid", str(N)]) as child:
        scope = probe.add_scope(child.pid)
        probe.add_filter(scope, "getppid")
        child.release()
        assert child.wait(timeout=30) == 0
        probe.remove_filter(scope, "getppid")
        evs = [e for e in drain(probe) if e.key_ns == scope]
        assert len(evs) == N
        assert {e.pid_ns for e in evs} == {child.pid_ns}
        probe.remove_scope(scope)


def test_add_scope_errors_are_clear(probe: Any, spinner: subprocess.Popen[bytes]) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(ValueError, match=f"no process with pid {dead.pid}"):
        probe.add_scope(dead.pid)
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while "Z" not in Path(f"/proc/{zombie.pid}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(ValueError, match=f"process {zombie.pid} has exited"):
        probe.add_scope(zombie.pid)
    zombie.wait()
    assert probe.scopes() == [] and not probe.scope_hooked()
    with pytest.raises(ValueError, match="tracer itself"):
        probe.add_scope(os.getpid())
    scope = probe.add_scope(spinner.pid)
    with pytest.raises(ValueError, match=f"already in scope {scope}"):
        probe.add_scope(spinner.pid)
    with pytest.raises(ValueError, match="pid"):
        probe.add_scope(0)


def test_key_ns_is_zero_for_every_namespace_and_pid_ns_otherwise(
    probe: Any, known_calls: Path
) -> None:
    argv = [str(known_calls), "getppid", str(N)]
    with NamespacedProcess(argv) as keyed, NamespacedProcess(argv) as other:
        probe.add_filter(0, "getppid")
        probe.add_filter(keyed.pid_ns, "getppid")
        keyed.release()
        other.release()
        assert keyed.wait(timeout=30) == 0 and other.wait(timeout=30) == 0
        probe.remove_filter(0, "getppid")
        probe.remove_filter(keyed.pid_ns, "getppid")
        got: list[tuple[int, int, int]] = []
        end = time.monotonic() + 10
        while time.monotonic() < end:
            b = probe.poll(timeout_ms=300)
            col = list(memoryview(b.column("key_ns")).cast("B").cast("I"))
            assert col == [e.key_ns for e in b]
            got.extend((e.pid_ns, e.key_ns, e.flags) for e in b if e.nr == NR_GETPPID)
            if not b and probe.stats().drained:
                break
    keyed_evs = [(k, f) for ns, k, f in got if ns == keyed.pid_ns]
    other_evs = [(k, f) for ns, k, f in got if ns == other.pid_ns]
    assert len(keyed_evs) == N == len(other_evs)
    assert all(k == keyed.pid_ns and not f & EVF_ANY_NS for k, f in keyed_evs)
    assert all(k == 0 and f & EVF_ANY_NS for k, f in other_evs)
