"""`syshub trace` and signals: Ctrl-C from a real terminal, SIGTERM/SIGHUP
forwarded, SIGKILL to syshub takes the command along, the command's own
signal semantics under the minimal init, --duration as timeout(1)."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import subprocess
import termios
import time
import uuid
from pathlib import Path

import pytest
from test_cli import (
    SYSHUB,
    alive,
    pids_with_arg,
    run,
    split_stderr,
    start,
    summary,
    wait_for,
)

pytestmark = pytest.mark.bpf

# The command notes each signal it gets in a file, and that it is ready.
HANDLER = (
    'trap "echo {sig} >> {log}; {after}" {sig}; echo ready > {ready}; while :; do sleep 0.05; done'
)


def _marker() -> str:
    return f"syshub-test-{uuid.uuid4().hex[:12]}"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _chain(mark: str, syshub: subprocess.Popen[str]) -> list[int]:
    """[helper, init, command], followed down from syshub (a shell's forks
    before exec carry the mark too), or as much of it as exists."""
    chain: list[int] = []
    kids = [q for q in _children(syshub.pid) if q in pids_with_arg(mark)]
    while kids and len(chain) < 3:
        chain.append(kids[0])
        kids = _children(kids[0])
    return chain


def _gone(pids: list[int], timeout: float = 5.0) -> None:
    wait_for(lambda: not any(alive(p) for p in pids), timeout, f"{pids} to end")


@pytest.mark.parametrize(("sig", "status"), [("TERM", 143), ("HUP", 129), ("INT", 130)])
def test_stopping_signal_is_forwarded_then_summary(tmp_path: Path, sig: str, status: int) -> None:
    log, ready, mark = tmp_path / "log", tmp_path / "ready", _marker()
    script = HANDLER.format(sig=sig, log=log, ready=ready, after="exit 3")
    p = start("trace", "-s", "clock_nanosleep,nanosleep,wait4", "--", "sh", "-c", script, mark)
    wait_for(ready.exists, what="the command to start")
    procs = _chain(mark, p)
    assert len(procs) == 3, procs
    p.send_signal(getattr(signal, f"SIG{sig}"))
    _, err = p.communicate(timeout=30)
    assert p.returncode == status, err
    assert log.read_text().split() == [sig]  # forwarded once
    s = summary(err)
    assert s["printed"] == len(split_stderr(err)[0]) > 0
    _gone(procs)


def _in_terminal(*args: str) -> tuple[subprocess.Popen[str], int]:
    """syshub in a new session whose controlling terminal is a pty."""
    master, slave = pty.openpty()

    def controlling_tty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(
        [*SYSHUB, *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=controlling_tty,  # the test process runs no threads
    )
    os.close(slave)
    return p, master


def test_ctrl_c_in_a_terminal(tmp_path: Path) -> None:
    """Ctrl-C: the terminal signals the command itself (same process group);
    syshub does not add a second SIGINT, stops, prints everything and exits 130.
    A command that survives SIGINT is ended."""
    log, ready, mark = tmp_path / "log", tmp_path / "ready", _marker()
    script = HANDLER.format(sig="INT", log=log, ready=ready, after=":")
    p, master = _in_terminal(
        "trace", "-s", "clock_nanosleep,nanosleep", "--", "sh", "-c", script, mark
    )
    try:
        wait_for(ready.exists, what="the command to start")
        procs = _chain(mark, p)
        assert len(procs) == 3, procs
        time.sleep(0.2)
        os.write(master, b"\x03")  # Ctrl-C
        _, err = p.communicate(timeout=30)
    finally:
        os.close(master)
    assert p.returncode == 130, err
    s = summary(err)
    assert s["printed"] == len(split_stderr(err)[0]) > 0
    assert log.read_text().split() == ["INT"]
    _gone(procs)


def test_sigkill_to_syshub_kills_the_command(tmp_path: Path) -> None:
    ready, mark = tmp_path / "ready", _marker()
    p = start(
        "trace", "-s", "getppid", "--", "sh", "-c", f"sleep 1000 & echo ready > {ready}; wait", mark
    )
    wait_for(ready.exists, what="the command to start")
    procs = _chain(mark, p)
    assert len(procs) == 3, procs
    sleeps = [c for c in _children(procs[-1]) if Path(f"/proc/{c}/comm").read_text() == "sleep\n"]
    assert len(sleeps) == 1
    p.kill()
    p.wait(timeout=10)
    _gone(procs + sleeps)


def test_kill_term_to_the_command_ends_it(tmp_path: Path) -> None:
    """The command is PID 2 of its namespace, not PID 1: SIGTERM without a
    handler kills it, as outside a namespace."""
    ready, mark = tmp_path / "ready", _marker()
    p = start(
        "trace",
        "-s",
        "exit_group",
        "--",
        "sh",
        "-c",
        f"sleep 1000 & echo ready > {ready}; wait",
        mark,
    )
    wait_for(ready.exists, what="the command to start")
    helper, init, cmd = _chain(mark, p)
    assert Path(f"/proc/{cmd}/comm").read_text().strip() == "sh"
    os.kill(cmd, signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    summary(err)
    _gone([helper, init, cmd])


def test_command_killing_itself_exits_137() -> None:
    r = run("trace", "-s", "kill", "--", "sh", "-c", "kill -9 $$")
    assert r.returncode == 137, r.stderr
    assert any("kill(" in ln and "SIGKILL" in ln for ln in split_stderr(r.stderr)[0]), r.stderr
    summary(r.stderr)


def test_exit_status_is_the_commands() -> None:
    r = run("trace", "-s", "exit_group", "--", "sh", "-c", "exit 42")
    assert r.returncode == 42, r.stderr
    r = run("trace", "-s", "exit_group", "--", "/nonexistent/program")
    assert r.returncode == 127 and "cannot run '/nonexistent/program'" in r.stderr
    r = run("trace", "-s", "exit_group", "--", "no-such-program-syshub")
    assert r.returncode == 127, r.stderr
    assert r.stderr.strip() == "syshub: error: command not found: 'no-such-program-syshub'"


def test_duration_ends_the_command_like_timeout() -> None:
    t0 = time.monotonic()
    r = run("trace", "-s", "clock_nanosleep,nanosleep", "--duration", "1", "--", "sleep", "100")
    took = time.monotonic() - t0
    assert r.returncode == 124, r.stderr
    assert 1.0 <= took < 10, took
    summary(r.stderr)


def test_duration_kills_a_command_that_ignores_sigterm(tmp_path: Path) -> None:
    mark = _marker()
    script = 'trap "" TERM; while :; do sleep 0.05; done'
    p = start("trace", "-s", "exit_group", "--duration", "0.5", "--", "sh", "-c", script, mark)
    procs = wait_for(lambda: len(_chain(mark, p)) == 3 and _chain(mark, p), what="the command")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 124, err
    summary(err)
    _gone(procs)


def test_duration_with_pid_exits_0() -> None:
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        r = run("trace", "-s", "getppid", "--duration", "500ms", "-p", str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)["matched"] == 0


def test_ctrl_c_during_start_up(tmp_path: Path) -> None:
    """SIGINT before tracing began: one line, exit 130, the command never ran."""
    touched, mark = tmp_path / "touched", _marker()
    p = start("trace", "-s", "openat", "--", "sh", "-c", f"touch {touched}", mark)
    # The helper exists while syshub is still starting (the command is held):
    # stop syshub there, so the signal surely arrives before tracing begins.
    wait_for(
        lambda: any(
            b"_nsinit.py" in Path(f"/proc/{q}/cmdline").read_bytes() for q in pids_with_arg(mark)
        ),
        what="the helper",
    )
    os.kill(p.pid, signal.SIGSTOP)
    os.kill(p.pid, signal.SIGINT)
    os.kill(p.pid, signal.SIGCONT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.strip() == "syshub: error: interrupted by SIGINT before tracing began", err
    assert not touched.exists()
    _gone(_chain(mark, p))


def test_what_the_command_leaves_running_ends_with_it(tmp_path: Path) -> None:
    bg, secs = tmp_path / "bg", f"{900 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 10**6}"
    r = run("trace", "-s", "exit_group", "--", "sh", "-c", f"sleep {secs} & echo $! > {bg}")
    assert r.returncode == 0, r.stderr
    assert bg.read_text().strip() == "3"  # in the namespace: init 1, command 2, the job 3
    wait_for(lambda: not any(alive(q) for q in pids_with_arg(secs)), 5, "the job to end")


def test_ignored_hangup_stays_ignored() -> None:
    """Like nohup: a SIGHUP ignored when syshub started is ignored by the command."""
    r = subprocess.run(
        [*SYSHUB, "trace", "-s", "kill", "--", "sh", "-c", "kill -HUP $$; echo alive"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    assert r.returncode == 0 and r.stdout == "alive\n", r.stderr
    summary(r.stderr)
