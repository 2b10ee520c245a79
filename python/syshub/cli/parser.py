"""The ``syshub`` command-line grammar: argparse parsers, value types and the
syscall-list syntax. Pure: nothing here loads the probe or starts a process.
A bad value raises :class:`UsageError` (one line, exit status 2)."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import NoReturn

from syshub import __version__, syscalls
from syshub.cli.crd_cmd import add_crd_parser
from syshub.cli.errors import UsageError
from syshub.cli.remote_cmd import add_remote_parsers
from syshub.cli.run_cmd import add_run_parser
from syshub.cli.top_cmd import add_top_parser
from syshub.errors import SyscallNameError
from syshub.spec import limits

DEFAULT_QUEUE = 65536
#: Event formats of `syshub trace` (-o FORMAT, --format).
OUTPUT_FORMATS = ("text", "json", "swoll-json")
#: Grace a command gets to exit after SIGTERM (--duration) before SIGKILL.
KILL_AFTER = 1.0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (not usage + message) and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Defaults in the help (when there is one), descriptions and epilogs kept
    as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


def ranged(what: str, lo: int = 1, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``lo..hi`` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            n = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if n < lo or (hi is not None and n > hi):
            bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{what} must be in {bounds}, got {n}")
        return n

    return parse


#: Integer options of `syshub trace`: flag, metavar, range, default, help.
_INT_OPTIONS: tuple[tuple[str, str, int, int, int, str], ...] = (
    ("--sample-rate", "N", 1, limits.SAMPLE_RATE_MAX, 1, "deliver 1 in N matching calls"),
    (
        "--str-max",
        "BYTES",
        1,
        limits.STR_MAX_LIMIT,
        limits.DEFAULT_STR_MAX,
        "bytes captured per string argument",
    ),
    (
        "--argv-max",
        "N",
        0,
        limits.ARGV_MAX_LIMIT,
        limits.DEFAULT_ARGV_MAX,
        "argv elements captured (execve)",
    ),
    (
        "--buf-max",
        "BYTES",
        0,
        limits.BUF_MAX_LIMIT,
        limits.DEFAULT_BUF_MAX,
        "bytes captured per buffer argument",
    ),
    (
        "--queue",
        "EVENTS",
        1,
        1 << 24,
        DEFAULT_QUEUE,
        "events held between the kernel reader and the output (more are counted as "
        "dropped (output))",
    ),
)


def duration(text: str) -> float:
    """Seconds (``2.5``) or with a unit (``500ms``, ``10s``, ``2m``, ``1h``);
    finite and > 0."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+|nan|inf|-inf)\s*(ms|s|m|h)?\s*", text, re.IGNORECASE)
    try:
        value = float(m.group(1)) if m else float("nan")
    except ValueError:
        value = float("nan")
    unit = (m.group(2) or "s").lower() if m else "s"
    seconds = value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"--duration must be a finite number of seconds > 0 (e.g. 10, 2.5, 500ms, 2m), "
            f"got {text!r}"
        )
    return seconds


def size(text: str) -> int:
    """Bytes, with an optional K/M/G suffix (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a size like 16M or 4096, got {text!r}")
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[(m.group(2) or "")[:1].upper()]
    return int(m.group(1)) * mult


def ring_bytes(text: str) -> int:
    n = size(text)
    lo, hi = limits.RING_BYTES_MIN, limits.RING_BYTES_MAX
    if n < lo or n > hi or n & (n - 1):
        raise argparse.ArgumentTypeError(
            f"--ring-bytes must be a power of two in {lo}..{hi} (e.g. 16M), got {text!r}"
        )
    return n


def class_names() -> list[str]:
    return syscalls.classes()


def find_class(name: str) -> str:
    """The syscall class called ``name`` (any case); UsageError lists the valid ones."""
    for c in class_names():
        if c.lower() == name.strip().lower():
            return c
    raise UsageError(f"unknown syscall class {name!r}; classes: {', '.join(class_names())}")


def parse_syscalls(text: str) -> list[str]:
    """``openat,execve``, numbers, ``%Network`` (a class, any case) or ``all``;
    canonical names in the order given, without repeats."""
    out: dict[str, None] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item.lower() == "all":
            out.update(dict.fromkeys(s.name for s in syscalls.table()))
        elif item.startswith("%"):
            out.update(dict.fromkeys(s.name for s in syscalls.calls(find_class(item[1:]))))
        else:
            try:
                out[syscalls.lookup(item).name] = None
            except SyscallNameError as e:
                raise UsageError(str(e)) from None
    if not out:
        raise UsageError("no syscalls given to -s/--syscalls")
    return list(out)


TRACE_EPILOG = """\
targets (one of):
  -- CMD [ARGS...]     run CMD in a new pid namespace and trace it and its children
  -p, --pid PID        PID and its descendants, in whatever namespace (like strace -f -p)
  --namespace-of PID   every process in the pid namespace of PID
  --host               every process on the host

syscalls (-s): names or numbers, %CLASS for a class (any case), or all. Classes:
  {classes}
  (`syshub syscalls --class CLASS` lists a class)

output: events go to stderr (like strace), so they never mix with the command's
stdout; -o FILE (or --output FILE) writes them to FILE, -o - to stdout. -o text,
-o json (JSON lines: one event document each) and -o swoll-json (swoll's event
JSON) choose the format; every other -o value is a file name (write a file named
json as -o ./json). The summary goes to stderr:
  syshub: M matched: P printed, K dropped (kernel), O dropped (output), S sampled out
with M = P + K + O + S exactly; when a flood filled the ring, K names the part
dropped over the fair share of the ring ("K dropped (kernel, F of them over the
fair share of the ring)").

exit status: the command's (128+N when signal N killed it); 124 when --duration
ended it (SIGTERM, then SIGKILL after {kill_after:g}s, as timeout(1) does);
128+N when signal N (SIGINT, SIGTERM, SIGHUP) stopped syshub; 2 for bad usage,
1 for output or system errors.

examples:
  syshub trace -s openat,execve -- ls /
  syshub trace -s %network -o json -o trace.json -- curl -s example.com
  syshub trace -s all --duration 10 -p 1234
"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="syshub",
        description="syshub: trace syscalls of commands, processes, containers and pods (eBPF).",
        formatter_class=_Formatter,
    )
    p.add_argument("--version", action="version", version=f"syshub {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser(
        "trace",
        help="trace syscalls of a command, a process, a pid namespace or the host",
        description="Trace syscalls with the local Hub (needs root: CAP_BPF, CAP_PERFMON, "
        "CAP_SYS_ADMIN).",
        epilog=TRACE_EPILOG.format(classes=", ".join(class_names()), kill_after=KILL_AFTER),
        formatter_class=_Formatter,
    )
    t.add_argument(
        "-s",
        "--syscalls",
        required=True,
        metavar="LIST",
        help="comma-separated syscall names, numbers, %%CLASS (one of: "
        + ", ".join(class_names())
        + ") or all",
    )
    where = t.add_mutually_exclusive_group()
    where.add_argument(
        "-p",
        "--pid",
        type=ranged("--pid"),
        help="trace this process and its descendants",
    )
    where.add_argument(
        "--namespace-of",
        type=ranged("--namespace-of"),
        metavar="PID",
        help="trace every process in the pid namespace of PID",
    )
    where.add_argument("--host", action="store_true", help="trace every process on the host")
    t.add_argument(
        "-o",
        dest="o",
        action="append",
        metavar="FORMAT|FILE",
        help="text, json or swoll-json: the event format; any other value: a file to write "
        "events to, as strace -o FILE ('-' for stdout); may be given twice (-o json -o F)",
    )
    t.add_argument(
        "--output",
        metavar="FILE",
        help="write events to FILE ('-' for stdout) (default: stderr)",
    )
    t.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        help="event format, as -o FORMAT (default: text)",
    )
    t.add_argument(
        "--duration",
        type=duration,
        metavar="SECONDS",
        help="stop after this long (10, 2.5, 500ms, 2m); a command is then ended as "
        "timeout(1) does and syshub exits 124",
    )
    t.add_argument(
        "-T",
        "--durations",
        action="store_true",
        help="time each call from entry to exit and show <seconds> as strace -T does "
        "(adds each traced syscall's entry hook: about twice the cost per call)",
    )
    for flag, metavar, lo, hi, default, text in _INT_OPTIONS:
        t.add_argument(flag, type=ranged(flag, lo, hi), default=default, metavar=metavar, help=text)
    t.add_argument(
        "--ring-bytes",
        type=ring_bytes,
        default="16M",
        metavar="SIZE",
        help="kernel ring buffer size (a power of two: 4096 .. 1G)",
    )
    t.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    s = sub.add_parser(
        "syscalls",
        help="list the syscall table",
        description="List syscalls: number, name, class, group.",
        formatter_class=_Formatter,
    )
    s.add_argument(
        "--class",
        dest="klass",
        metavar="CLASS",
        help=f"only this class (any case): {', '.join(class_names())}",
    )
    add_remote_parsers(sub, _Formatter)
    add_top_parser(sub, _Formatter)
    add_crd_parser(sub, _Formatter)
    add_run_parser(sub, _Formatter)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the trace command's cross-argument rules."""
    args = build_parser().parse_args(argv)
    if args.command == "trace":
        cmd = list(args.cmd)
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        args.cmd = cmd
        targets = sum((args.pid is not None, args.namespace_of is not None, args.host))
        if cmd and targets:
            raise UsageError("give either a command or --pid/--namespace-of/--host, not both")
        if not cmd and not targets:
            raise UsageError(
                "missing command: syshub trace -s SYSCALLS -- CMD [ARGS...] "
                "(or --pid PID, --namespace-of PID, --host)"
            )
        args.syscall_names = parse_syscalls(args.syscalls)
        args.format, args.output = output_choice(args.o, args.format, args.output)
    return args


def output_choice(
    values: list[str] | None, fmt: str | None, path: str | None
) -> tuple[str, str | None]:
    """The event format and file of `syshub trace` from its -o values (a
    format name or a file), --format and --output; one of each at most."""
    for v in values or ():
        if v in OUTPUT_FORMATS:
            if fmt is not None and fmt != v:
                raise UsageError(f"two event formats given: {fmt} and {v}")
            fmt = v
        else:
            if path is not None and path != v:
                raise UsageError(f"two output files given: {path!r} and {v!r}")
            path = v
    return fmt or "text", path
