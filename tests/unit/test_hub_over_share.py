"""JobStats.over_share: a key's over-share drops given to a job's contexts
on the key in order, each at most its own drops; totals follow. Pure."""

from __future__ import annotations

from syshub.hub import HubStats, JobKeyStats, JobStats
from syshub.probe import KernelCounters, KeyStats, KeyTotals, ProbeStats, ReaderCounters


def probe(*keys: KeyStats) -> ProbeStats:
    total = KeyTotals(
        matched=sum(k.matched for k in keys),
        sampled_out=0,
        dropped=sum(k.dropped for k in keys),
        delivered=sum(k.delivered for k in keys),
        over_share=sum(k.over_share for k in keys),
    )
    kernel = KernelCounters(0, 0, 0, 0, 0, 0, 0, total.over_share)
    return ProbeStats(keys, total, kernel, ReaderCounters(0, 0, 0, 0))


def key(ns: int, matched: int, dropped: int, over_share: int) -> KeyStats:
    return KeyStats(ns, 39, "getpid", matched, 0, dropped, matched - dropped,
                    matched - dropped, 0, over_share)  # fmt: skip


def job(*keys: JobKeyStats) -> JobStats:
    return JobStats.of("j", "Running", keys, ())


def test_over_share_is_split_over_a_jobs_contexts_at_most_their_drops() -> None:
    p = probe(key(1, 100, 40, 30), key(2, 50, 0, 0))
    jobs = {
        "j": job(
            JobKeyStats(1, 39, 60, 40, 20, 0),  # first context on key 1: 20 of the 30
            JobKeyStats(1, 39, 40, 20, 20, 0),  # second: the 10 left
            JobKeyStats(2, 39, 50, 50, 0, 0),
        ),
        "k": job(JobKeyStats(1, 39, 100, 60, 40, 0)),  # another job on key 1: all 30
    }
    st = HubStats(p, jobs, routed=0, unrouted=0)
    assert [k.over_share for k in st.jobs["j"].keys] == [20, 10, 0]
    assert st.jobs["j"].over_share == 30 and st.jobs["j"].dropped == 40
    assert st.jobs["k"].over_share == 30
    assert st.over_share == 30


def test_without_over_share_the_jobs_are_untouched() -> None:
    jobs = {"j": job(JobKeyStats(1, 39, 10, 5, 5, 0))}
    st = HubStats(probe(key(1, 10, 5, 0)), jobs, routed=0, unrouted=0)
    assert st.jobs is jobs and st.jobs["j"].over_share == 0
    assert HubStats(None, jobs, routed=0, unrouted=0).jobs["j"].over_share == 0
