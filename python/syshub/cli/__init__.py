"""The ``syshub`` command line: ``syshub trace``, ``syshub syscalls``."""

from __future__ import annotations

from syshub.cli.main import main

__all__ = ["main"]
