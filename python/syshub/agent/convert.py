"""The Hub's values as the agent's protobuf messages (and back, for clients)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syshub import syscalls
from syshub.agent.streams import StreamStats
from syshub.agent.traces import TraceEntry
from syshub.hub import HubStats, JobStats
from syshub.v1 import agent_pb2 as pb


def counters(
    matched: int, delivered: int, dropped: int, sampled_out: int, over_share: int = 0
) -> pb.Counters:
    return pb.Counters(
        matched=matched,
        delivered=delivered,
        dropped=dropped,
        sampled_out=sampled_out,
        over_share=over_share,
    )


def _syscall_name(nr: int) -> str:
    try:
        return syscalls.lookup(nr).name
    except ValueError:
        return str(nr)


def trace_info(entry: TraceEntry, node: str, js: JobStats | None) -> pb.TraceInfo:
    t, job = entry.trace, entry.job
    info = pb.TraceInfo(
        name=t.name,
        namespace=t.namespace,
        job_id=job.job_id,
        state=t.status.state.value,
        manifest_json=t.to_json(),
        applied=job.wait_applied(0),
        target=str(job.target),
        node=node,
        error=job.error or "",
        syscalls=list(t.spec.syscalls),
    )
    if js is not None:
        info.counters.CopyFrom(
            counters(js.matched, js.delivered, js.dropped, js.sampled_out, js.over_share)
        )
    return info


def stream_stats(s: StreamStats) -> pb.StreamStats:
    return pb.StreamStats(
        id=s.id,
        source=s.source,
        peer=s.peer,
        format=s.format,
        counters=pb.StreamCounters(
            matched=s.matched, delivered=s.delivered, dropped=s.dropped, queued=s.queued
        ),
    )


def job_stats(js: JobStats, entry: TraceEntry | None) -> pb.JobStats:
    out = pb.JobStats(
        job_id=js.job_id,
        name=entry.trace.name if entry else "",
        namespace=entry.trace.namespace if entry else "",
        state=js.state,
        counters=counters(js.matched, js.delivered, js.dropped, js.sampled_out, js.over_share),
    )
    for k in js.keys:
        out.keys.add(
            pid_ns=k.pid_ns,
            nr=k.nr,
            syscall=_syscall_name(k.nr),
            counters=counters(k.matched, k.delivered, k.dropped, k.sampled_out, k.over_share),
        )
    for s in js.subscribers:
        out.subscribers.add(name=s.name, delivered=s.delivered, dropped=s.dropped, queued=s.queued)
    return out


def stats_response(
    node: str,
    st: HubStats,
    entries: Mapping[str, TraceEntry],
    streams: Iterable[StreamStats],
    only_job: str | None = None,
) -> pb.StatsResponse:
    """Per key (kernel), per job and per stream; ``entries`` by job id."""
    out = pb.StatsResponse(
        node=node,
        routed=st.routed,
        unrouted=st.unrouted,
        decode_errors=st.decode_errors,
        reader_errors=st.reader_errors,
        lost=st.lost,
    )
    if st.probe is not None and only_job is None:
        for k in st.probe.keys:
            out.keys.add(
                pid_ns=k.pid_ns,
                nr=k.nr,
                syscall=k.syscall,
                counters=counters(k.matched, k.delivered, k.dropped, k.sampled_out, k.over_share),
                emitted=k.emitted,
                pending=k.pending,
            )
    for job_id, js in sorted(st.jobs.items()):
        if only_job is None or job_id == only_job:
            out.jobs.append(job_stats(js, entries.get(job_id)))
    out.streams.extend(stream_stats(s) for s in streams)
    return out


def syscalls_response(klass: str = "") -> pb.SyscallsResponse:
    wanted = klass.strip().lower()
    out = pb.SyscallsResponse()
    for s in syscalls.table():
        if not wanted or s.klass.lower() == wanted:
            out.syscalls.add(nr=s.nr, name=s.name, **{"class": s.klass}, group=s.group)
    return out
