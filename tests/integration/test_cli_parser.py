"""The `syshub` grammar without running anything (no privileges needed)."""

from __future__ import annotations

import argparse
import math

import pytest

from syshub import syscalls
from syshub.cli.errors import UsageError
from syshub.cli.parser import duration, parse_args, parse_syscalls, ranged, ring_bytes, size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10.0), ("2.5", 2.5), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), (" 3 s ", 3.0)],
)
def test_duration(text: str, seconds: float) -> None:
    assert math.isclose(duration(text), seconds)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "-inf", "1e400", "abc", "", "5x"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="finite number of seconds > 0"):
        duration(text)


def test_sizes() -> None:
    assert size("4096") == 4096 and size("64K") == 65536 and size("16M") == 16 << 20
    assert size("1GiB") == 1 << 30 and ring_bytes("16m") == 16 << 20
    for bad in ("-4096", "1T", "4097", "2G", "1024"):
        with pytest.raises(argparse.ArgumentTypeError):
            ring_bytes(bad)


def test_ranged() -> None:
    assert ranged("--x", 0, 5)("0x5") == 5
    with pytest.raises(argparse.ArgumentTypeError, match=r"--x must be in 1\.\.3, got 4"):
        ranged("--x", 1, 3)("4")
    with pytest.raises(argparse.ArgumentTypeError, match="--x must be an integer"):
        ranged("--x")("one")


def test_syscall_list_syntax() -> None:
    assert parse_syscalls("openat, sys_execve,257,openat") == ["openat", "execve"]
    net = parse_syscalls("%network")
    assert net == parse_syscalls("%NETWORK") == [s.name for s in syscalls.calls("Network")]
    # `time` is a syscall and (capitalised) a class: the % tells them apart
    assert parse_syscalls("time") == ["time"]
    assert len(parse_syscalls("%time")) == len(syscalls.calls("Time")) > 1
    assert len(parse_syscalls("all")) == len(syscalls.table()) == 383
    with pytest.raises(UsageError, match="unknown syscall class 'nope'; classes: FileSystem"):
        parse_syscalls("%nope")
    with pytest.raises(UsageError, match="no syscalls"):
        parse_syscalls(" , ")


def test_targets_and_command() -> None:
    a = parse_args(["trace", "-s", "openat", "--", "ls", "-l"])
    assert a.cmd == ["ls", "-l"] and a.syscall_names == ["openat"] and a.format == "text"
    assert a.output is None and a.ring_bytes == 16 << 20 and a.queue == 65536
    b = parse_args(["trace", "-s", "openat", "-p", "42", "--format", "json", "-o", "-"])
    assert b.pid == 42 and b.cmd == [] and b.output == "-"
    with pytest.raises(UsageError, match="not allowed with argument"):
        parse_args(["trace", "-s", "openat", "--pid", "1", "--host"])
    with pytest.raises(UsageError, match="missing command"):
        parse_args(["trace", "-s", "openat"])


@pytest.mark.parametrize(
    ("argv", "fmt", "output"),
    [
        (["-o", "json"], "json", None),
        (["-o", "swoll-json"], "swoll-json", None),
        (["-o", "text"], "text", None),
        (["-o", "trace.log"], "text", "trace.log"),
        (["-o", "./json"], "text", "./json"),
        (["-o", "-"], "text", "-"),
        (["-o", "json", "-o", "out.json"], "json", "out.json"),
        (["-o", "out.json", "-o", "json"], "json", "out.json"),
        (["-o", "json", "--output", "f"], "json", "f"),
        (["--format", "swoll-json", "-o", "f"], "swoll-json", "f"),
        (["--format", "json", "-o", "json"], "json", None),
        (["--output", "json"], "text", "json"),
    ],
)
def test_output_grammar(argv: list[str], fmt: str, output: str | None) -> None:
    """-o FORMAT chooses the format, any other -o value is a file (strace's
    -o FILE), --output FILE and --format FORMAT say it explicitly."""
    a = parse_args(["trace", "-s", "openat", *argv, "--", "true"])
    assert (a.format, a.output) == (fmt, output)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "json", "-o", "text"], "two event formats given: json and text"),
        (["--format", "text", "-o", "json"], "two event formats given: text and json"),
        (["-o", "a", "-o", "b"], "two output files given: 'a' and 'b'"),
        (["--output", "a", "-o", "b"], "two output files given: 'a' and 'b'"),
    ],
)
def test_output_grammar_conflicts(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_args(["trace", "-s", "openat", *argv, "--", "true"])
