"""A pid namespace inode reused: the kernel hands a dead namespace's inode
to a later new namespace, so a filter left on it would trace a stranger. The
Hub holds a traced container's namespace open until the container's STOP has
removed its filters: a namespace born while the dead container is still held
gets another inode and is not traced; once the STOP is processed, a
namespace that reuses the inode is traced only if the observer announces it
as a container the Trace selects, and its per-key counters start at 0.

The reuse is made to happen, not waited for: inode numbers come from one
allocator (lowest free number first) shared by every namespace of the host,
and a dead namespace's number is freed only after an RCU grace period. A
claimer process creates pid namespaces in a tight loop, keeping the ones
below the freed number (filling the holes a new namespace would otherwise
take first) and letting the ones above go, until it is handed the freed
number; it then forks the workload into that namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from syshub import Hub, KeyStats, Trace, syscalls
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf

TICK_CODE = "import os, time\nwhile 1: os.getppid(); time.sleep(0.002)"
TICK = [sys.executable, "-c", TICK_CODE]
GETPPID = syscalls.lookup("getppid").nr
CLAIM_SECONDS = 20.0
ROUNDS = 3

# argv: target inode, seconds. Prints "PID TRIES HELD" once the workload runs in a
# new pid namespace whose inode is the target, or "!reason" and exits 1.
CLAIMER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
NEWPID = 0x20000000
target, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
home = os.open("/proc/self/ns/pid", os.O_RDONLY)
held, tries = [], 0
while True:
    if libc.unshare(NEWPID) != 0:
        print("!unshare: errno", ctypes.get_errno(), flush=True); sys.exit(1)
    r, w = os.pipe()
    pid = os.fork()  # PID 1 of the new namespace: it exists once it has a process
    if pid == 0:
        os.close(w)
        if os.read(r, 1) == b"g":
            os.execv(sys.executable, [sys.executable, "-c", sys.argv[3]])
        os._exit(0)
    os.close(r)
    fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
    ino, tries = os.fstat(fd).st_ino, tries + 1
    if ino == target:
        os.write(w, b"g")
        break
    os.write(w, b"x")
    os.close(w)
    os.waitpid(pid, 0)
    if ino < target:
        held.append(fd)  # a lower free number: keep it taken
    else:
        os.close(fd)  # the freed number is not free yet (RCU): let this one go
    if libc.setns(home, NEWPID) != 0:
        print("!setns: errno", ctypes.get_errno(), flush=True); sys.exit(1)
    if time.monotonic() > end:
        print(f"!the inode was not handed out in {tries} namespaces", flush=True); sys.exit(1)
print(pid, tries, len(held), flush=True)
os.waitpid(pid, 0)
"""


@dataclass
class Claimed:
    pid: int
    pid_ns: int
    tries: int
    claimer: subprocess.Popen[bytes]

    def kill(self) -> None:
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            fd = -1
        if fd >= 0:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        self.claimer.wait(timeout=10)


@contextmanager
def claim(inode: int) -> Iterator[Claimed | str]:
    """The workload in a new pid namespace of inode ``inode``, or why not."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", CLAIMER, str(inode), str(CLAIM_SECONDS), TICK_CODE],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line or line.startswith("!"):
        proc.wait(timeout=10)
        yield line[1:] or f"the claimer exited {proc.returncode}"
        return
    pid, tries, _held = (int(x) for x in line.split())
    c = Claimed(pid, inode, tries, proc)
    try:
        yield c
    finally:
        c.kill()


def box(pid: int, pid_ns: int, name: str) -> Container:
    return Container(id=name, name=name, pid=pid, pid_ns=pid_ns, pod=name, namespace="reuse")


def pid_namespaces_seen(hub: Hub, trace: Trace, secs: float) -> set[int]:
    sub = hub.subscribe(trace)
    seen: set[int] = set()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        seen.update(ev.pid_ns for ev in sub.get_batch(4096, timeout=0.1))
    sub.close()
    return seen


def wait_filter(hub: Hub, pid_ns: int, present: bool) -> None:
    end = time.monotonic() + 5
    while (pid_ns in {k[0] for k in hub.desired_filters()}) != present:
        assert time.monotonic() < end, f"filter of {pid_ns} still {'absent' if present else 'set'}"
        time.sleep(0.02)


def hub_probe_key(hub: Hub, pid_ns: int) -> KeyStats | None:
    probe = hub.stats().probe
    assert probe is not None
    return probe.key(pid_ns, GETPPID)


def key_matched(hub: Hub, pid_ns: int) -> int:
    k = hub_probe_key(hub, pid_ns)
    return 0 if k is None else k.matched


def one_round(hub: Hub, obs: LocalObserver, trace: Trace, n: int) -> str | None:
    """A traced, dies, is stopped; its inode goes to a stranger, then to a new
    container. None when checked, else why the inode could not be claimed."""
    a = NamespacedProcess(TICK)
    a.release()
    ca = box(a.pid, a.pid_ns, f"a{n}")
    obs.start_container(ca)
    wait_filter(hub, a.pid_ns, True)
    assert pid_namespaces_seen(hub, trace, 0.5) == {a.pid_ns}
    assert key_matched(hub, a.pid_ns) > 0
    # A dies; its STOP is not processed yet: the Hub still holds its namespace.
    a.kill()
    a.wait(timeout=10)
    a.close()
    a_matched = key_matched(hub, a.pid_ns)
    with NamespacedProcess(TICK) as b:
        b.release()
        assert b.pid_ns != a.pid_ns, "a held namespace's inode was reused"
        assert b.pid_ns not in pid_namespaces_seen(hub, trace, 0.5)
    # The STOP releases the filters and the hold; the inode may now be reused.
    obs.stop_container(ca)
    wait_filter(hub, a.pid_ns, False)
    ended = hub_probe_key(hub, a.pid_ns)
    assert ended is not None and ended.lifetime == 1 and ended.matched == a_matched
    t0 = time.monotonic()
    with claim(a.pid_ns) as c:
        if isinstance(c, str):
            return c
        took = time.monotonic() - t0
        print(f"round {n}: inode {a.pid_ns} reused after {c.tries} namespaces, {took:.3f} s")
        with open(f"/proc/{c.pid}/ns/pid", "rb") as f:
            assert os.fstat(f.fileno()).st_ino == a.pid_ns
        # A stranger on the dead container's inode: no filter, no events.
        assert pid_namespaces_seen(hub, trace, 0.5) == set()
        cc = box(c.pid, c.pid_ns, f"c{n}")
        obs.start_container(cc)
        wait_filter(hub, c.pid_ns, True)
        assert pid_namespaces_seen(hub, trace, 0.5) == {c.pid_ns}
        c.kill()  # no more calls: the counters hold still
        time.sleep(0.2)
        # The key's counters start at 0 with the new filter (the probe's
        # second lifetime of the key): they are the new container's job
        # context's, and A's (the first lifetime) are listed apart, after them.
        st = hub.stats()
        assert st.probe is not None
        entries = [k for k in st.probe.keys if (k.pid_ns, k.nr) == (c.pid_ns, GETPPID)]
        contexts = [k for k in st.jobs[trace.status.job_id].keys if k.pid_ns == c.pid_ns]
        assert len(entries) == 2 and len(contexts) == 2, (entries, contexts)
        now, before = entries
        assert (now.lifetime, before.lifetime) == (2, 0)
        assert st.probe.key(c.pid_ns, GETPPID) == now
        assert 0 < now.matched == contexts[0].matched
        assert before.matched == a_matched == contexts[1].matched
        for e in entries:  # each lifetime balances on its own, all read out
            assert e.matched == e.delivered + e.dropped + e.sampled_out, e
            assert e.emitted == e.delivered and e.pending == 0, e
        assert st.probe.total.matched >= now.matched + before.matched
        obs.stop_container(cc)
        wait_filter(hub, c.pid_ns, False)
    return None


def test_a_reused_namespace_inode_is_never_traced_by_a_stale_filter(
    hub_obs: tuple[Hub, LocalObserver],
) -> None:
    hub, obs = hub_obs
    trace = Trace.new("reuse", ["getppid"], namespace="reuse")
    hub.run_trace(trace)
    assert hub.wait_applied(trace, timeout=10)
    misses = []
    for n in range(ROUNDS):
        why = one_round(hub, obs, trace, n)
        if why is None:
            break
        misses.append(why)  # another process took the number first: again
    else:
        pytest.fail(f"the freed inode was never handed to a new pid namespace: {misses}")
    hub.delete_trace(trace)
