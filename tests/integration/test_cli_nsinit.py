"""The namespace helper (``syshub/_nsinit.py`` via :mod:`syshub.nsproc`): it
runs as root, so it never imports from the current directory; and the
command dies with whoever started it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli import alive, summary, wait_for

pytestmark = pytest.mark.bpf

CONSOLE_SCRIPT = Path(sys.executable).parent / "syshub"


def _trap_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A directory whose ./syshub/_nsinit.py and stdlib look-alikes would leave
    a mark if anything imported or ran them."""
    mark = tmp_path / "pwned"
    evil = f"open({str(mark)!r}, 'a').write(__name__ + '\\n')\n"
    cwd = tmp_path / "cwd"
    (cwd / "syshub").mkdir(parents=True)
    for f in ("syshub/__init__.py", "syshub/_nsinit.py", "_nsinit.py", "ctypes.py", "signal.py"):
        (cwd / f).write_text(evil)
    return cwd, mark


def test_helper_ignores_the_current_directory(tmp_path: Path) -> None:
    cwd, mark = _trap_dir(tmp_path)
    r = subprocess.run(
        [str(CONSOLE_SCRIPT), "trace", "-s", "exit_group", "--", "sh", "-c", "exit 5"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 5, r.stderr
    assert summary(r.stderr)["printed"] == 1
    # The library too, from a process whose cwd is the trap.
    code = textwrap.dedent(
        """
        from syshub.nsproc import NamespacedProcess
        with NamespacedProcess(["sh", "-c", "exit 4"], init=True) as p:
            p.release()
            print(p.wait())
        """
    )
    r = subprocess.run(
        [sys.executable, "-P", "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert r.stdout.strip() == "4", r.stderr
    assert not mark.exists(), mark.read_text()


@pytest.mark.parametrize(("init", "released"), [(True, True), (True, False), (False, True)])
def test_command_dies_with_its_starter(init: bool, released: bool) -> None:
    """SIGKILL to the process that started the command: the helper, the init
    and the command (and the command's child) all end (PR_SET_PDEATHSIG)."""
    code = textwrap.dedent(
        f"""
        import json, sys, time
        from syshub.nsproc import NamespacedProcess
        p = NamespacedProcess(["sh", "-c", "sleep 1000; :"], init={init})
        if {released}:
            p.release()
        print(json.dumps([p._relay.pid, p.init_pid, p.pid]), flush=True)
        time.sleep(1000)
        """
    )
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    pids = [p for p in json.loads(starter.stdout.readline()) if p is not None]
    if released:
        cmd = pids[-1]
        children = Path(f"/proc/{cmd}/task/{cmd}/children")
        kid = wait_for(lambda: children.read_text().split(), what="sleep to start")
        pids += [int(k) for k in kid]
    assert all(alive(p) for p in pids)
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    wait_for(lambda: not any(alive(p) for p in pids), 5, f"{pids} to end")


def test_a_starter_with_over_1024_descriptors_open() -> None:
    """The helper learns of its starter's death through a pidfd whose number is
    the starter's next free descriptor: past 1024 (a busy agent or soak) it must
    still start the command (select() refuses such numbers)."""
    code = textwrap.dedent(
        """
        import os, resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
        held = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
        assert held[-1] > 1024
        from syshub.nsproc import NamespacedProcess
        with NamespacedProcess(["sh", "-c", "exit 6"]) as p:
            p.release()
            print(p.wait())
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.stdout.strip() == "6", r.stderr
