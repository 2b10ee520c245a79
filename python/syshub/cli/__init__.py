"""The ``syshub`` command line: ``syshub trace``, ``syshub syscalls``.

Modules: :mod:`~syshub.cli.main` (entry point, errors to exit statuses),
:mod:`~syshub.cli.parser` (grammar), :mod:`~syshub.cli.trace_cmd` (the trace
run on a local Hub), :mod:`~syshub.cli.output` (event writers),
:mod:`~syshub.cli.signals` (stopping signals)."""

from __future__ import annotations

import importlib
import os

# The builtin module, not ``signal`` (which imports enum): the handler must be
# in place before the slower imports start.
_signal = importlib.import_module("_signal")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def _interrupted_early(signum: int, _frame: object) -> None:
    os.write(2, b"syshub: error: interrupted by SIGINT before tracing began\n")
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Ctrl-C while the command line's modules load is
    one line and exit 130, never a traceback; then :func:`syshub.cli.main.main`
    handles signals itself."""
    early = _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    if early:
        _signal.signal(_signal.SIGINT, _interrupted_early)
    from syshub.cli.main import main as run

    if early:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    return run(argv)


__all__ = ["main"]
