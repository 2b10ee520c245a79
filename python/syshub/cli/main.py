"""The ``syshub`` command line: ``syshub trace``, ``syshub syscalls``.

Every error is one line on stderr: exit status 2 for bad usage, 1 for output
or system errors, 128+N when signal N stopped syshub (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from syshub.cli.errors import EXIT_FAILURE, CliError, OutputError, UsageError
from syshub.cli.output import silence_std_streams
from syshub.errors import SyshubError

EXIT_PIPE = 128 + signal.SIGPIPE


def _error(message: str) -> None:
    with contextlib.suppress(OSError):
        sys.stderr.write(f"syshub: error: {message}\n")
        sys.stderr.flush()


def _syscalls(klass: str | None) -> int:
    from syshub import syscalls
    from syshub.cli.parser import find_class

    wanted = find_class(klass) if klass else None
    rows = [
        f"{s.nr}\t{s.name}\t{s.klass}\t{s.group}\n"
        for s in syscalls.table()
        if wanted is None or s.klass == wanted
    ]
    try:
        sys.stdout.write("".join(rows))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_std_streams()
        return EXIT_PIPE
    return 0


def _trace(args: argparse.Namespace) -> int:
    from syshub.cli.signals import Interrupted, SignalGate
    from syshub.cli.trace_cmd import run_trace

    with SignalGate() as gate:
        try:
            return run_trace(args, gate)
        except Interrupted as e:
            _error(f"interrupted by {e} before tracing began")
            return 128 + e.signum
        except OutputError as e:
            _error(str(e))
            silence_std_streams()
            return e.status


def _leave(status: int) -> None:
    """The command line's end of a trace: everything is written, the Hub is
    stopped; skip the interpreter's teardown (~0.1 s of module finalization)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``syshub ARGS``; returns the exit status (run from the command
    line, ``argv`` None, a trace ends the process itself)."""
    try:
        from syshub.cli.parser import parse_args

        try:
            args = parse_args(None if argv is None else list(argv))
        except SystemExit as e:  # --help, --version
            return e.code if isinstance(e.code, int) else 0
        if args.command == "syscalls":
            return _syscalls(args.klass)
        handler = getattr(args, "handler", None)
        if handler is not None:  # commands that register their own (crd, run)
            return int(handler(args))
        if args.command in ("agent", "traces", "watch"):
            from syshub.cli.remote_cmd import run_remote

            return run_remote(args)
        status = _trace(args)
        if argv is None:
            _leave(status)
        return status
    except CliError as e:
        _error(str(e))
        return e.status
    except SyshubError as e:  # a Hub, probe or topology failure not foreseen above
        _error(str(e))
        return EXIT_FAILURE
    except KeyboardInterrupt:  # before the trace command took over the signals
        _error("interrupted by SIGINT before tracing began")
        return 128 + signal.SIGINT


__all__ = ["UsageError", "main"]

if __name__ == "__main__":
    sys.exit(main())
