"""Errors the command line reports in one line, with their exit status."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 127


class CliError(Exception):
    """Reported as ``syshub: error: <message>``; exits with :attr:`status`."""

    status = EXIT_FAILURE

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UsageError(CliError):
    """Bad command-line input (exit status 2)."""

    status = EXIT_USAGE


class OutputError(CliError):
    """The output could not be opened or written (exit status 1)."""


class BrokenOutput(OutputError):
    """The reader of the output went away (EPIPE)."""
