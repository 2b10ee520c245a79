"""The ``syshub`` command line: ``syshub trace``, ``syshub syscalls``.

Modules: :mod:`~syshub.cli.main` (entry point, errors to exit statuses),
:mod:`~syshub.cli.parser` (grammar), :mod:`~syshub.cli.trace_cmd` (the trace
run on a local Hub), :mod:`~syshub.cli.output` (event writers),
:mod:`~syshub.cli.signals` (stopping signals)."""

from __future__ import annotations

from syshub.cli.main import main

__all__ = ["main"]
