"""A filter key removed and added again starts a new lifetime in the probe:
its counters start at 0, what its earlier lifetimes counted is a second
entry (``lifetime`` 0) after the latest, each entry balances on its own and
the totals keep every lifetime."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from probe_helpers import drain
from syshub import KeyStats, syscalls
from syshub.nsproc import NamespacedProcess

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr
# Calls getppid N times for each line N read, then answers.
CALLER = (
    "import os, sys\n"
    "for line in sys.stdin:\n"
    "    for _ in range(int(line)): os.getppid()\n"
    "    print('ok', flush=True)\n"
)


def entries(probe: Any, pid_ns: int) -> list[KeyStats]:
    return [k for k in probe.stats().keys if (k.pid_ns, k.nr) == (pid_ns, GETPPID)]


def test_a_key_added_again_counts_each_lifetime_apart(probe: Any) -> None:
    to_child, from_us = os.pipe()
    to_us, from_child = os.pipe()
    with (
        os.fdopen(from_us, "wb") as ask,
        os.fdopen(to_us, "rb") as answer,
        NamespacedProcess(
            [sys.executable, "-c", CALLER], stdin=to_child, stdout=from_child
        ) as child,
    ):
        os.close(to_child)
        os.close(from_child)
        child.release()

        def calls(n: int) -> None:
            ask.write(f"{n}\n".encode())
            ask.flush()
            assert answer.readline() == b"ok\n"

        ns = child.pid_ns
        got: list[list[tuple[int, int, int]]] = []
        for n in (10, 7, 3):  # three lifetimes of one key
            probe.add_filter(ns, "getppid")
            calls(n)
            drain(probe)
            got.append([(e.lifetime, e.matched, e.delivered) for e in entries(probe, ns)])
            probe.remove_filter(ns, "getppid")
        calls(5)  # no filter: not counted
        drain(probe)
        ask.close()
        assert child.wait(timeout=30) == 0
    assert got == [
        [(1, 10, 10)],
        [(2, 7, 7), (0, 10, 10)],
        [(3, 3, 3), (0, 17, 17)],
    ]
    # Removed: the last lifetime stays the key's latest entry.
    now, before = entries(probe, ns)
    assert (now.lifetime, now.matched, before.lifetime, before.matched) == (3, 3, 0, 17)
    assert probe.stats().key(ns, GETPPID) == now
    for e in (now, before):
        assert e.matched == e.delivered + e.dropped + e.sampled_out
        assert e.emitted == e.delivered and e.pending == 0
    total = probe.stats().total
    assert (total.matched, total.delivered, total.dropped) == (20, 20, 0)
