"""The kernel probe against the real kernel: exact events, filters, sampling,
drop accounting, fd hygiene, close/poll semantics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from probe_helpers import drain
from syshub import Probe, syscalls
from syshub.errors import ProbeError, SyscallNameError
from syshub.nsproc import NamespacedProcess, pid_namespace_inode

pytestmark = pytest.mark.bpf


def run_traced(probe: Any, argv: list[str], syscalls: list[str], rate: int = 1) -> tuple[int, int]:
    """Run argv in a new pid namespace with filters on it; returns (status, pid_ns)."""
    with NamespacedProcess(argv) as child:
        for s in syscalls:
            probe.add_filter(child.pid_ns, s, rate)
        child.release()
        status = child.wait(timeout=30)
        # Remove the filters while the namespace is still held open: once it
        # is gone its inode can be reused by someone else's namespace.
        for s in syscalls:
            probe.remove_filter(child.pid_ns, s)
        return status, child.pid_ns


def test_known_calls_exact_events(probe: Any, known_calls: Path) -> None:
    status, ns = run_traced(
        probe, [str(known_calls), "known"], ["openat", "open", "connect", "execve", "exit_group"]
    )
    assert status == 7
    evs = [e for e in drain(probe) if e.pid_ns == ns]
    # The first execve is the one that started the program; then the calls it makes.
    names = [e.syscall for e in evs]
    assert names == ["execve", "openat", "openat", "open", "connect", "execve", "exit_group"]
    start, ok, bad, op, conn, ex, eg = evs
    assert start.ret == 0 and start.args["filename"] == str(known_calls)
    assert start.args["argv"] == [str(known_calls), "known"]
    assert ok.args["filename"] == "/etc/hostname"
    assert ok.args["flags"] == "O_RDONLY|O_CLOEXEC"
    assert ok.args["dfd"] == "AT_FDCWD"
    assert ok.ret >= 3 and ok.errno is None and ok.error == "OK"
    assert bad.args["filename"] == "/nonexistent/syshub"
    assert bad.ret == -2 and bad.errno == 2 and bad.error == "ENOENT"
    assert op.args["filename"] == "/etc/hostname" and op.ret >= 3
    assert conn.args["uservaddr"] == {"family": "AF_INET", "addr": "127.0.0.1", "port": 9}
    assert conn.error == "ECONNREFUSED"
    assert ex.args["filename"] == "/nonexistent/prog"
    assert ex.args["argv"] == ["syshub-none", "a1", "a2"]
    assert ex.error == "ENOENT"
    assert eg.no_exit and eg.args["error_code"] == 7 and eg.to_dict()["return"] is None
    for e in evs:
        # PID 1 of its namespace; the host sees another pid.
        assert e.ns_tgid == 1 and e.ns_tid == 1
        assert e.tgid == e.tid and e.tgid != 1
        assert e.pid_ns == ns != pid_namespace_inode("self")
        assert e.comm in ("known_calls", "python3", "python")
    assert [e.seq for e in evs if e.syscall == "openat"] == [1, 2]
    text = ok.to_text()
    assert 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = ' in text
    # No durations asked: openat is recorded at exit only (its arguments read
    # from the saved registers), with no entry time and no duration.
    assert bad.exit_only and bad.enter_ns == 0 and bad.exit_ns > 0 and bad.latency_ns == 0
    assert bad.to_text().endswith("= -1 ENOENT")
    # exec and exit need their entry hook whatever the filter asks.
    assert not start.exit_only and 0 < start.enter_ns <= start.exit_ns
    assert not eg.exit_only and eg.enter_ns > 0


def test_pid_ns_matches_proc(probe: Any, known_calls: Path) -> None:
    with NamespacedProcess([str(known_calls), "getppid", "3"]) as child:
        expected = os.stat(f"/proc/{child.pid}/ns/pid").st_ino
        assert child.pid_ns == expected
        probe.add_filter(child.pid_ns, "getppid")
        child.release()
        child.wait(timeout=30)
        probe.remove_filter(child.pid_ns, "getppid")
    evs = drain(probe)
    assert len(evs) == 3
    assert {e.pid_ns for e in evs} == {expected}
    assert {e.tgid for e in evs} == {child.pid}


def test_filters_add_remove_and_isolation(probe: Any, known_calls: Path) -> None:
    a = NamespacedProcess([str(known_calls), "wait"], stdin=-1)
    b = NamespacedProcess([str(known_calls), "wait"], stdin=-1)
    try:
        assert a.pid_ns != b.pid_ns
        probe.add_filter(a.pid_ns, "getppid")
        assert [(f.pid_ns, f.syscall) for f in probe.filters()] == [(a.pid_ns, "getppid")]
        assert (110, False) in probe.hooked()
        a.release()
        b.release()
        stdin_a = a._relay.stdin
        stdin_b = b._relay.stdin
        assert stdin_a is not None and stdin_b is not None
        for _ in range(5):
            stdin_a.write(b"x")
            stdin_b.write(b"x")
        stdin_a.flush()
        stdin_b.flush()
        time.sleep(0.2)
        evs = drain(probe)
        assert len(evs) == 5
        assert {e.pid_ns for e in evs} == {a.pid_ns}
        # Removing the filter stops events and detaches the hook.
        assert probe.remove_filter(a.pid_ns, "getppid") is True
        assert probe.remove_filter(a.pid_ns, "getppid") is False
        assert probe.filters() == []
        assert all(nr != 110 for nr, _ in probe.hooked())
        for _ in range(5):
            stdin_a.write(b"x")
        stdin_a.flush()
        time.sleep(0.2)
        assert drain(probe, until_idle_ms=100) == []
        stdin_a.close()
        stdin_b.close()
    finally:
        for c in (a, b):
            c.kill()
            c.wait()


@pytest.mark.parametrize("rate", [2, 3, 7])
def test_sampling_exact(probe: Any, known_calls: Path, rate: int) -> None:
    n = 1000
    _, ns = run_traced(probe, [str(known_calls), "getppid", str(n)], ["getppid"], rate)
    evs = drain(probe)
    seqs = [e.seq for e in evs]
    stats = probe.stats()
    expected = list(range(rate, n + 1, rate))
    missing = sorted(set(expected) - set(seqs))[:10]
    extra = sorted(set(seqs) - set(expected))[:10]
    assert seqs == expected, f"missing {missing} extra {extra} stats {stats}"
    (key,) = [k for k in stats.keys if k.pid_ns == ns]
    assert key.matched == n
    assert key.sampled_out == n - n // rate
    assert key.delivered == n // rate
    assert key.dropped == 0


def test_drops_counted_exactly_with_tiny_ring(known_calls: Path) -> None:
    probe = Probe(4096, poll_ms=1000)
    try:
        n = 20000
        _, ns = run_traced(probe, [str(known_calls), "getppid", str(n)], ["getppid"], 1)
        drain(probe)
        (key,) = [k for k in probe.stats().keys if k.pid_ns == ns]
        assert key.matched == n
        assert key.dropped > 0, "a 4 KiB ring that is not read must overflow"
        assert key.matched == key.delivered + key.dropped + key.sampled_out
        total = probe.stats().kernel
        assert total.dropped >= key.dropped
    finally:
        probe.close()


def test_no_stale_bytes_between_records(probe: Any, known_calls: Path) -> None:
    run_traced(probe, [str(known_calls), "strings"], ["openat"])
    evs = drain(probe)
    short = [e for e in evs if e.args.get("filename") == "/a"]
    assert len(short) == 1
    raw = short[0].raw()
    hdr = 160
    # One capture: 16-byte header, 2 data bytes, then zero padding to 8 bytes.
    slot, kind = raw[hdr], raw[hdr + 1]
    length = int.from_bytes(raw[hdr + 4 : hdr + 8], "little")
    assert (slot, kind, length) == (1, 1, 2)
    data = raw[hdr + 16 : hdr + 16 + 8]
    assert data == b"/a" + b"\0" * 6
    assert len(raw) == hdr + 16 + 8


def test_no_fd_leak_across_open_close() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(5):
        p = Probe(1 << 16)
        p.add_filter(0, "getppid")
        p.add_filter(0, "openat")
        p.poll(timeout_ms=1)
        p.close()
        p.close()  # idempotent
    assert fds() == before


def test_close_unblocks_waiting_poll() -> None:
    p = Probe(1 << 16)
    got: list[int] = []

    def waiter() -> None:
        got.append(len(p.poll(timeout_ms=20_000)))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    p.close()
    t.join(timeout=5)
    assert not t.is_alive()
    assert got == [0]
    assert time.monotonic() - start < 2
    assert p.closed
    with pytest.raises(ProbeError, match="closed"):
        p.poll(timeout_ms=1)
    with pytest.raises(ProbeError, match="closed"):
        p.add_filter(0, "openat")


def test_poll_releases_gil_and_ctrl_c_interrupts(probe: Any) -> None:
    ticks = 0
    stop = False

    def spin() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        probe.poll(timeout_ms=10_000)
    stop = True
    t.join()
    assert time.monotonic() - start < 3
    assert ticks > 50, "the other thread must run while poll waits"


def test_unknown_syscall_suggests(probe: Any) -> None:
    with pytest.raises(SyscallNameError, match="openat") as ei:
        probe.add_filter(0, "opneat")
    assert isinstance(ei.value, ValueError)
    probe.add_filter(0, "sys_openat")
    assert probe.filters()[0].syscall == "openat"
    with pytest.raises(ValueError, match="sample_rate"):
        probe.add_filter(0, "openat", -1)
    with pytest.raises(ValueError):
        probe.add_filter(0, "openat", 1, str_max=5000)


def test_columns_match_events(probe: Any, known_calls: Path) -> None:
    np = pytest.importorskip("numpy")
    run_traced(probe, [str(known_calls), "getppid", "50"], ["getppid"])
    seen = 0
    end = time.monotonic() + 10
    while seen < 50 and time.monotonic() < end:
        b = probe.poll(timeout_ms=500)
        evs = list(b)
        seq = np.asarray(b.column("seq"))
        assert seq.dtype == np.uint64 and len(seq) == len(evs)
        assert list(seq) == [e.seq for e in evs]
        assert list(np.asarray(b.column("tgid"))) == [e.tgid for e in evs]
        assert list(memoryview(b.column("ret")).cast("B").cast("q")) == [e.ret for e in evs]
        seen += len(evs)
    assert seen == 50
    with pytest.raises(KeyError):
        probe.poll(timeout_ms=1).column("nope")


def test_sendmsg_recvmsg_socket_addresses(probe: Any) -> None:
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n"
        "c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 0))\n"
        "c.sendmsg([b'hello'], [], 0, s.getsockname())\n"
        "s.recvmsg(100)\n"
        "print(s.getsockname()[1], c.getsockname()[1])\n"
    )
    with NamespacedProcess([sys.executable, "-c", code], stdout=subprocess.PIPE) as child:
        probe.add_filter(child.pid_ns, "sendmsg")
        probe.add_filter(child.pid_ns, "recvmsg")
        child.release()
        out = child._relay.stdout
        assert out is not None
        server_port, client_port = map(int, out.read().split())
        child.wait(timeout=30)
        probe.remove_filter(child.pid_ns, "sendmsg")
        probe.remove_filter(child.pid_ns, "recvmsg")
    evs = drain(probe)
    by = {e.syscall: e for e in evs}
    assert by["sendmsg"].args["msg"] == {
        "family": "AF_INET",
        "addr": "127.0.0.1",
        "port": server_port,
    }
    assert by["recvmsg"].args["msg"] == {
        "family": "AF_INET",
        "addr": "127.0.0.1",
        "port": client_port,
    }
    assert by["sendmsg"].ret == 5 and by["recvmsg"].ret == 5


def test_poll_honours_max_events_and_keeps_order(probe: Any, known_calls: Path) -> None:
    _, ns = run_traced(probe, [str(known_calls), "getppid", "50"], ["getppid"])
    seqs: list[int] = []
    end = time.monotonic() + 10
    while len(seqs) < 50 and time.monotonic() < end:
        b = probe.poll(max_events=7, timeout_ms=200)
        assert len(b) <= 7
        assert list(memoryview(b.column("seq")).cast("B").cast("Q")) == [e.seq for e in b]
        seqs.extend(e.seq for e in b)
    assert seqs == list(range(1, 51))
    (key,) = [k for k in probe.stats().keys if k.pid_ns == ns]
    assert key.delivered == 50 and key.pending == 0
    with pytest.raises(ValueError, match="max_events"):
        probe.poll(max_events=0)


def test_removed_keys_free_their_kernel_counters(probe: Any, known_calls: Path) -> None:
    """Counters of a removed key leave the kernel map (which holds 65536 keys)
    but stay in stats; a key added again starts a new sequence."""
    _, ns = run_traced(probe, [str(known_calls), "getppid", "10"], ["getppid"])
    drain(probe)
    assert (ns, 110) not in probe.sequences()
    (key,) = [k for k in probe.stats().keys if k.pid_ns == ns]
    assert key.matched == 10 == key.delivered
    for i in range(3):  # many short-lived keys: the kernel map does not grow
        probe.add_filter(1000 + i, "getppid")
        probe.remove_filter(1000 + i, "getppid")
    assert probe.sequences() == {}


def _in_private_mount_ns_without_tracefs(
    code: str, *prefix: str
) -> subprocess.CompletedProcess[str]:
    script = (
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; "
        'test -z "$(ls /sys/kernel/tracing)" || exit 99; exec "$@"'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_tracefs_is_mounted() -> None:
    code = (
        "from syshub import Probe\n"
        "p = Probe(1 << 16); p.add_filter(0, 'getppid'); print(p.hooked()); p.close()\n"
    )
    r = _in_private_mount_ns_without_tracefs(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[(110, False)]"


def test_missing_tracefs_without_privileges_is_a_clear_error() -> None:
    code = (
        "from syshub import Probe\n"
        "try:\n    Probe(1 << 16)\n"
        "except PermissionError as e:\n    print('PERM', e)\n"
    )
    r = _in_private_mount_ns_without_tracefs(code, "setpriv", "--bounding-set=-all", "--")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PERM") and "tracefs" in r.stdout, r.stdout


@pytest.mark.bpf
@pytest.mark.parametrize(("limit", "raw"), [(None, True), (8, False)])
def test_tracepoint_syscalls_bounds_per_syscall_hooks(limit: int | None, raw: bool) -> None:
    """Past ``tracepoint_syscalls`` (default 3) every traced syscall moves to
    the raw hooks; with a higher limit each keeps its own tracepoint."""
    names = ["getppid", "getpid", "getuid", "getgid", "geteuid"]
    nrs = {syscalls.lookup(n).nr for n in names}
    with Probe(1 << 16, tracepoint_syscalls=limit) as p:
        for n in names:
            p.add_filter(0, n)
        hooked = dict(p.hooked())
        assert nrs <= set(hooked)
        assert {hooked[nr] for nr in nrs} == {raw}
