"""The command's trace starts at its execve: nothing the namespace launcher
does (signal set-up, the pid report, the go-byte read) is attributed to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpf

SYSHUB = Path(sys.executable).parent / "syshub"


@pytest.mark.parametrize(
    ("cmd", "syscalls"),
    [
        (["/bin/true"], "all"),
        (["/bin/sh", "-c", "echo hi >/dev/null"], "all"),
        (["/bin/sh", "-c", ":"], "close,read,write,fcntl,rt_sigaction,rt_sigprocmask,execve"),
    ],
)
def test_first_event_is_the_execve(cmd: list[str], syscalls: str) -> None:
    for _ in range(3):
        out = subprocess.run(
            [str(SYSHUB), "trace", "-s", syscalls, "-o", "json", "--output", "-", "--", *cmd],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert docs, out
        first = docs[0]
        assert first["syscall"]["name"] == "sys_execve", [d["syscall"]["name"] for d in docs[:5]]
        assert first["args"]["filename"] == cmd[0] and first["return"] == 0
