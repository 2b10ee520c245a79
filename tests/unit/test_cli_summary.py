"""The CLI's end-of-trace summaries: the kernel's drops name the part dropped
over the fair share of the ring, only when there is one."""

from __future__ import annotations

from syshub import JobKeyStats, JobStats
from syshub.cli.summary import kernel_drops, trace_summary


def job(dropped: int, over_share: int) -> JobStats:
    key = JobKeyStats(
        pid_ns=4026531836,
        nr=110,
        matched=1000,
        delivered=1000 - dropped - 10,
        dropped=dropped,
        sampled_out=10,
        over_share=over_share,
    )
    return JobStats.of("j1", "Running", (key,), ())


def test_no_over_share_keeps_the_plain_line() -> None:
    assert trace_summary(job(40, 0), printed=940) == (
        "syshub: 1000 matched: 940 printed, 40 dropped (kernel), "
        "10 dropped (output), 10 sampled out"
    )


def test_over_share_drops_are_named_within_the_kernel_drops() -> None:
    line = trace_summary(job(600, 590), printed=380, decode_errors=2)
    assert line == (
        "syshub: 1000 matched: 380 printed, "
        "600 dropped (kernel, 590 of them over the fair share of the ring), "
        "10 dropped (output), 10 sampled out; 2 malformed records"
    )


def test_kernel_drops_text() -> None:
    assert kernel_drops(0, 0) == "0 dropped (kernel)"
    assert kernel_drops(7, 7) == "7 dropped (kernel, 7 of them over the fair share of the ring)"
