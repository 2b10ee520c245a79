"""The one-line summaries the CLI prints on stderr when a trace ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syshub.hub.stats import JobStats


def kernel_drops(dropped: int, over_share: int) -> str:
    """``K dropped (kernel)``, naming the part the fair share of the ring
    dropped (the traced key held more than its share) when there is one."""
    if over_share:
        return f"{dropped} dropped (kernel, {over_share} of them over the fair share of the ring)"
    return f"{dropped} dropped (kernel)"


def trace_summary(js: JobStats, printed: int, decode_errors: int = 0) -> str:
    """``syshub trace``'s summary: M = P + K + O + S exactly."""
    line = (
        f"syshub: {js.matched} matched: {printed} printed, "
        f"{kernel_drops(js.dropped, js.over_share)}, "
        f"{js.delivered - printed} dropped (output), {js.sampled_out} sampled out"
    )
    if decode_errors:
        line += f"; {decode_errors} malformed records"
    return line
