"""Calls recorded at exit only, durations on demand, and per-CPU staging,
against the real kernel: which syscalls get an entry hook, what an exit-only
record carries, that a forked child is never recorded, that one thread's
records stay in order and that every call is counted exactly."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from probe_helpers import drain
from syshub import Probe, syscalls
from syshub.nsproc import NamespacedProcess

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr


def traced(probe: Any, argv: list[str], wants: dict[str, bool]) -> int:
    """Runs argv in a new pid namespace with a filter per syscall (value:
    durations); returns its pid namespace once it exited. The filters are
    removed while the namespace is still held: once it is gone its inode may
    be another namespace's (other tests run on this machine too)."""
    with NamespacedProcess(argv) as child:
        for name, durations in wants.items():
            probe.add_filter(child.pid_ns, name, durations=durations)
        child.release()
        assert child.wait(timeout=30) in (0, 7)
        for name in wants:
            probe.remove_filter(child.pid_ns, name)
        return child.pid_ns


def key_stats(probe: Any, ns: int, name: str) -> Any:
    k = probe.stats().key(ns, syscalls.lookup(name).nr)
    assert k is not None
    return k


def test_exit_only_unless_durations_or_needed(probe: Any, known_calls: Path) -> None:
    with NamespacedProcess([str(known_calls), "getppid", "3"]) as child:
        probe.add_filter(child.pid_ns, "getppid")
        probe.add_filter(child.pid_ns, "execve")
        probe.add_filter(child.pid_ns, "clone")
        entry = set(probe.entry_hooked())
        # getppid needs no entry; exec and the fork family always do.
        assert GETPPID not in entry
        assert {syscalls.lookup("execve").nr, syscalls.lookup("clone").nr} <= entry
        # A filter wanting durations attaches getppid's entry hook.
        probe.add_filter(child.pid_ns, "getppid", durations=True)
        assert GETPPID in set(probe.entry_hooked())
        child.release()
        assert child.wait(timeout=30) == 0
        evs = [e for e in drain(probe) if e.pid_ns == child.pid_ns and e.syscall == "getppid"]
    assert len(evs) == 3
    for e in evs:
        assert not e.exit_only and 0 < e.enter_ns <= e.exit_ns
        assert e.to_text().endswith(">")


def test_exit_only_record_reads_arguments_and_strings(probe: Any, known_calls: Path) -> None:
    ns = traced(probe, [str(known_calls), "strings"], {"openat": False})
    evs = [e for e in drain(probe) if e.pid_ns == ns and e.syscall == "openat"]
    assert [e.args["filename"] for e in evs] == ["/" + "x" * 198, "/a"]
    for e in evs:
        assert e.exit_only and e.enter_ns == 0 and e.exit_ns > 0 and e.latency_ns == 0
        assert e.args["flags"] == "O_RDONLY" and e.args["dfd"] == "AT_FDCWD"
        assert e.error == "ENOENT"
        assert e.ns_tgid == 1 and e.comm == "known_calls"
    k = key_stats(probe, ns, "openat")
    assert k.matched == k.delivered == 2 and k.dropped == k.sampled_out == 0


def test_durations_time_each_call(probe: Any) -> None:
    with NamespacedProcess(["sleep", "0.05"]) as child:
        probe.add_filter(child.pid_ns, "clock_nanosleep", durations=True)
        probe.add_filter(child.pid_ns, "nanosleep", durations=True)
        child.release()
        assert child.wait(timeout=30) == 0
        evs = [e for e in drain(probe) if e.pid_ns == child.pid_ns]
    assert evs, "sleep made no nanosleep call"
    slept = max(e.latency_ns for e in evs)
    assert 45_000_000 <= slept < 5_000_000_000, slept


def test_forked_child_is_not_recorded(probe: Any) -> None:
    # Each `true` is forked by the shell: one clone per child, seen once (the
    # parent's return), never a second time from the child's return.
    script = "for i in 1 2 3 4 5; do /bin/true; done"
    with NamespacedProcess(["/bin/sh", "-c", script]) as child:
        probe.add_filter(child.pid_ns, "clone")
        probe.add_filter(child.pid_ns, "clone3")
        probe.add_filter(child.pid_ns, "vfork")
        probe.add_filter(child.pid_ns, "fork")
        child.release()
        assert child.wait(timeout=30) == 0
        evs = [e for e in drain(probe) if e.pid_ns == child.pid_ns]
    assert len(evs) == 5, [e.to_text() for e in evs]
    assert all(e.ret > 0 for e in evs)


def test_one_threads_records_stay_in_order_and_are_counted(probe: Any, known_calls: Path) -> None:
    n = 200_000
    ns = traced(probe, [str(known_calls), "getppid", str(n)], {"getppid": False})
    evs = [e for e in drain(probe, timeout=30) if e.pid_ns == ns]
    k = key_stats(probe, ns, "getppid")
    assert k.matched == n
    assert k.matched == k.delivered + k.dropped + k.sampled_out
    assert len(evs) == k.delivered
    seqs = [e.seq for e in evs]
    assert seqs == sorted(seqs)
    times = [e.exit_ns for e in evs]
    assert times == sorted(times)


def test_a_few_calls_then_quiet_still_arrive(probe: Any, known_calls: Path) -> None:
    # The process makes one call per line and then blocks in read: its
    # records must reach user space while it is still alive.
    r, w = os.pipe()
    with NamespacedProcess([str(known_calls), "wait"], stdin=r) as child:
        os.close(r)
        probe.add_filter(child.pid_ns, "getppid")
        child.release()
        os.write(w, b"abc")
        seen: list[Any] = []
        end = time.monotonic() + 5
        while time.monotonic() < end and len(seen) < 3:
            seen.extend(e for e in probe.poll(timeout_ms=100) if e.pid_ns == child.pid_ns)
        os.close(w)
        child.wait(timeout=30)
    assert len(seen) == 3


def test_small_ring_still_takes_records(known_calls: Path) -> None:
    # A one-page ring holds less than a staging buffer: records go one by one.
    p = Probe(4096)
    try:
        ns = traced(p, [str(known_calls), "getppid", "50"], {"getppid": False})
        evs = [e for e in drain(p) if e.pid_ns == ns]
        k = p.stats().key(ns, GETPPID)
        assert k is not None and k.matched == 50
        assert k.matched == k.delivered + k.dropped + k.sampled_out
        assert len(evs) == k.delivered > 0
    finally:
        p.close()


def _calls(w: int, n: int) -> None:
    os.write(w, b"x" * n)
    time.sleep(0.2)


def test_a_tasks_cached_match_follows_filter_and_scope_changes(
    probe: Any, known_calls: Path
) -> None:
    # The task repeats one call, so it matches through its cache; every
    # change of the filters or scopes must still apply to its next call.
    r, w = os.pipe()
    with NamespacedProcess([str(known_calls), "wait"], stdin=r) as child:
        os.close(r)
        ns = child.pid_ns
        probe.add_filter(ns, "getppid")
        child.release()
        _calls(w, 4)
        probe.add_filter(ns, "getppid", 2)  # the same key, now 1 in 2
        _calls(w, 4)
        scope = probe.add_scope(child.pid)
        probe.add_filter(scope, "getppid")  # the scope's key comes first now
        _calls(w, 3)
        probe.remove_filter(scope, "getppid")  # back to the namespace's key
        _calls(w, 2)
        os.close(w)
        assert child.wait(timeout=30) == 0
        probe.remove_filter(ns, "getppid")
        evs = drain(probe)
    by_ns = [e for e in evs if e.pid_ns == ns and not e.flags & 0x10]
    by_scope = [e for e in evs if e.flags & 0x10 and e.tgid == child.pid]
    k = probe.stats().key(ns, GETPPID)
    assert k is not None and k.matched == 4 + 4 + 2
    assert k.sampled_out == 2 + 1 and k.delivered == len(by_ns) == 4 + 2 + 1
    assert len(by_scope) == 3
