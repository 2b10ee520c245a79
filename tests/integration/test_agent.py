"""The node agent end to end: a real ``syshub agent`` subprocess (root, real
kernel), clients over its unix socket, a workload in its own pid namespace
selected by a Trace's hostSelector (the agent's HostObserver names the
namespace after the program)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from support.agent_env import (
    AgentProcess,
    Collector,
    Workload,
    seen_by_host_observer,
    wait_until,
)
from syshub import syscalls
from syshub.client import AgentError, AsyncAgentClient

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("agent")).start()
    try:
        yield a
    finally:
        assert a.stop() == 0, a.logs()


@pytest.fixture
def work(known_calls: Path, tmp_path: Path) -> Iterator[Workload]:
    w = Workload(known_calls, tmp_path)
    try:
        assert wait_until(lambda: seen_by_host_observer(w.name)), "workload never ran"
        yield w
    finally:
        w.close()


def _stream_open(agent: AgentProcess, trace: str, n: int = 1) -> None:
    c = agent.client()
    assert wait_until(lambda: len(c.stats(trace).streams) >= n), "stream never opened"


def test_socket_is_root_only(agent: AgentProcess) -> None:
    mode = os.stat(agent.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_create_watch_delete_end_to_end(agent: AgentProcess, work: Workload) -> None:
    c = agent.client()
    info = c.create_trace(work.manifest("e2e"), wait_applied=10)
    assert (info.name, info.namespace, info.state, info.applied) == (
        "e2e",
        "default",
        "Running",
        True,
    )
    assert info.node == agent.node and list(info.syscalls) == ["getppid"]
    assert [t.name for t in c.list_traces()] == ["e2e"]
    stream = Collector(c, "e2e")
    _stream_open(agent, "e2e")
    work.calls(5)
    events = stream.wait_events(5)
    assert len(events) == 5
    for ev in events:
        assert ev["syscall"]["nr"] == GETPPID, ev
        assert ev["container"]["name"] == work.name
        assert ev["container"]["pid-namespace"] == work.pid_ns
    assert stream.batches[0].node == agent.node
    gone = c.delete_trace("e2e")
    assert (gone.state, gone.counters.matched, gone.counters.delivered) == ("Complete", 5, 5)
    stream.join()
    final = stream.final
    assert final is not None and final.end_reason == "trace ended"
    fc = final.counters
    assert (fc.matched, fc.delivered, fc.dropped, fc.queued) == (5, 5, 0, 0)
    with pytest.raises(AgentError, match="NOT_FOUND"):
        c.get_trace("e2e")
    assert c.list_traces() == []


def test_durations_asked_through_the_api(agent: AgentProcess, work: Workload) -> None:
    # Without durations a call is recorded at exit only (start 0); with
    # capture.durations each event has its entry time too.
    c = agent.client()
    c.create_trace(work.manifest("plain"), wait_applied=10)
    stream = Collector(c, "plain")
    _stream_open(agent, "plain")
    work.calls(2)
    plain = stream.wait_events(2)
    c.delete_trace("plain")
    stream.join()
    assert all(ev["start"] == 0 < ev["finish"] for ev in plain), plain
    c.create_trace(work.manifest("timed"), wait_applied=10, durations=True)
    stream = Collector(c, "timed")
    _stream_open(agent, "timed")
    work.calls(2)
    timed = stream.wait_events(2)
    c.delete_trace("timed")
    stream.join()
    assert all(0 < ev["start"] <= ev["finish"] for ev in timed), timed


def test_json_text_proto_and_records_streams_carry_the_same_events(
    agent: AgentProcess, work: Workload
) -> None:
    c = agent.client()
    c.create_trace(work.manifest("fmts"), wait_applied=10)
    js, tx, pr, rc = (Collector(c, "fmts", format=f) for f in ("json", "text", "proto", "records"))
    _stream_open(agent, "fmts", 4)
    work.calls(4)
    js.wait_events(4)
    rc.wait_events(4)
    assert wait_until(lambda: sum(len(b.lines) for b in tx.batches) == 4)
    assert wait_until(lambda: sum(len(b.batch.events) for b in pr.batches if b.batch) == 4)
    c.delete_trace("fmts")
    for s in (js, tx, pr, rc):
        s.join()
        assert s.final.counters.delivered == 4
    protos = [ev for b in pr.batches if b.batch for ev in b.batch.events]
    assert [e.seq for e in protos] == [d["seq"] for d in js.events]
    assert all(e.syscall.nr == GETPPID and e.container.name == work.name for e in protos)
    assert all(b.batch.node == agent.node for b in pr.batches if b.batch)
    lines = [line for b in tx.batches for line in b.lines]
    assert all(f"{work.name}[" in line and " getppid() = " in line for line in lines), lines
    # The records form decodes, in the client, to exactly the agent's documents.
    assert rc.events == js.events
    recs = [b.records for b in rc.batches if b.records is not None]
    assert sum(len(r) for r in recs) == 4
    assert all(r.batch[0].pid_ns in r.containers for r in recs)


def test_two_clients_on_one_trace_and_stats_balance(agent: AgentProcess, work: Workload) -> None:
    c = agent.client()
    c.create_trace(work.manifest("two"), wait_applied=10)
    a, b = Collector(c, "two"), Collector(agent.client(), "two", format="json")
    _stream_open(agent, "two", 2)
    work.calls(40)
    assert len(a.wait_events(40)) == 40 and len(b.wait_events(40)) == 40
    assert [e["seq"] for e in a.events] == [e["seq"] for e in b.events]
    st = c.stats("two")
    (job,) = st.jobs
    k = job.counters
    assert k.matched == k.delivered + k.dropped + k.sampled_out == 40
    for key in job.keys:
        kc = key.counters
        assert kc.matched == kc.delivered + kc.dropped + kc.sampled_out
    assert sorted(s.source for s in st.streams) == ["trace:default/two"] * 2
    c.delete_trace("two")
    a.join()
    b.join()
    for s in (a, b):
        fc = s.final.counters
        assert (fc.matched, fc.delivered, fc.dropped) == (40, 40, 0)


def test_slow_client_loses_only_its_own_events(agent: AgentProcess, work: Workload) -> None:
    """A client that does not read fills its own small queue; the other one
    gets every event meanwhile; both streams' counters balance."""
    n = 20000
    c = agent.client()
    c.create_trace(work.manifest("slow"), wait_applied=10)
    slow = c.watch_raw("slow", queue=64, max_batch=8)  # never read until the end
    fast = Collector(agent.client(), "slow")
    _stream_open(agent, "slow", 2)
    t0 = time.monotonic()
    work.calls(n)
    assert len(fast.wait_events(n, timeout=60)) == n
    took = time.monotonic() - t0
    st = c.stats("slow")
    by_queue = {
        s.counters.matched - s.counters.delivered - s.counters.queued: s for s in st.streams
    }
    assert max(by_queue) > 0, f"the slow stream dropped nothing: {st.streams}"
    assert min(by_queue) == 0
    c.delete_trace("slow")
    fast.join()
    assert fast.final.counters.dropped == 0
    from syshub.client.messages import watch_batch

    msgs = [watch_batch(m, True, "") for m in slow]
    got = sum(len(m.events) for m in msgs)
    fc = msgs[-1].counters
    assert msgs[-1].final and fc.matched == n and fc.delivered == got
    assert fc.dropped == n - got > 0 and fc.queued == 0
    print(f"fast client: {n} events in {took:.2f} s; slow client kept {got}, dropped {fc.dropped}")


def test_client_that_goes_away_is_freed_within_a_second(
    agent: AgentProcess, work: Workload
) -> None:
    c = agent.client()
    c.create_trace(work.manifest("gone"), wait_applied=10)
    other = agent.client()
    s = Collector(other, "gone")
    _stream_open(agent, "gone")
    work.calls(3)
    s.wait_events(3)
    other.close()  # the client goes away (channel closed: the call is cancelled)
    t0 = time.monotonic()
    assert wait_until(lambda: not c.stats("gone").streams, timeout=2)
    assert time.monotonic() - t0 < 1.0
    (job,) = c.stats("gone").jobs
    assert [sub.queued for sub in job.subscribers if sub.queued] == []
    assert any(
        r.get("msg") == "stream closed" and r.get("client_gone") for r in agent.log_records()
    )
    c.delete_trace("gone")


def test_killed_stalled_client_is_freed_within_a_second(
    agent: AgentProcess, work: Workload
) -> None:
    """A client process that stops reading, then dies (SIGKILL): its stream
    and queue go within a second; the trace goes on."""
    c = agent.client()
    c.create_trace(work.manifest("killed"), wait_applied=10)
    code = (
        "import sys, time\n"
        "from syshub.client import AgentClient\n"
        f"call = AgentClient({agent.target!r}).watch_raw('killed', queue=32, max_batch=4)\n"
        "next(iter(call))\n"
        "print('reading', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        _stream_open(agent, "killed")
        work.calls(3000)  # the first message, then a full queue: the client reads no more
        assert proc.stdout is not None and proc.stdout.readline() == "reading\n"
        assert wait_until(lambda: c.stats("killed").streams[0].counters.dropped > 0)
        proc.kill()
        proc.wait()
        t0 = time.monotonic()
        assert wait_until(lambda: not c.stats("killed").streams, timeout=3)
        assert time.monotonic() - t0 < 1.0
        (job,) = c.stats("killed").jobs
        assert all(sub.queued == 0 for sub in job.subscribers)
    finally:
        proc.kill()
        proc.wait()
        c.delete_trace("killed")


def test_watch_a_path(agent: AgentProcess, work: Workload) -> None:
    """A path stream (namespace/pod/container/syscall prefix; "" for all)
    sees the events every trace receives; it ends when the agent stops, not
    with a trace. Local processes have no Kubernetes namespace, so only the
    empty prefix selects them."""
    c = agent.client()
    c.create_trace(work.manifest("pathy"), wait_applied=10)
    every = Collector(c, path="")
    other = Collector(c, path="kube-system/nopod")
    assert wait_until(lambda: len(c.stats().streams) >= 2)
    assert {s.source for s in c.stats().streams} >= {"path:*", "path:kube-system/nopod"}
    work.calls(6)
    mine = [e for e in every.wait_events(6) if e["container"]["name"] == work.name]
    assert len(mine) == 6
    c.delete_trace("pathy")
    assert other.events == []
    for s in (every, other):
        s.cancel()
        s.join()
    with pytest.raises(AgentError, match="INVALID_ARGUMENT: path"):
        list(c.watch(path="a/b/c/nosuchcall"))
    with pytest.raises(AgentError, match="INVALID_ARGUMENT: path"):
        list(c.watch(path="a/b/c/d/e"))


def test_bad_requests_get_their_codes(agent: AgentProcess, work: Workload) -> None:
    c = agent.client()
    cases = {
        "spec.syscalls[0]": work.manifest("bad", syscalls="nosuchcall"),
        "spec.duration": work.manifest("bad", extra="  duration: forever\n"),
        "spec.labelSelector": work.manifest(
            "bad", extra="  labelSelector: {matchExpressions: [{key: a, operator: Near}]}\n"
        ),
        "manifest": "",
    }
    for field, manifest in cases.items():
        with pytest.raises(AgentError, match="INVALID_ARGUMENT") as e:
            c.create_trace(manifest)
        assert field in str(e.value), str(e.value)
    with pytest.raises(AgentError, match="INVALID_ARGUMENT: wait_applied_seconds"):
        c.create_trace(work.manifest("bad"), wait_applied=-1)
    with pytest.raises(AgentError, match=r"INVALID_ARGUMENT: target\.pid: no such process"):
        c.create_trace(work.manifest("bad"), pid=1 << 30)
    with pytest.raises(AgentError, match="INVALID_ARGUMENT: class"):
        c.syscalls("nosuchclass")
    for call in (c.get_trace, c.delete_trace):
        with pytest.raises(AgentError, match="NOT_FOUND: name: no trace default/nope"):
            call("nope")
    with pytest.raises(AgentError, match="NOT_FOUND"):
        list(c.watch("nope"))
    with pytest.raises(AgentError, match="INVALID_ARGUMENT: name"):
        c.get_trace("")
    c.create_trace(work.manifest("dup"))
    with pytest.raises(AgentError, match="ALREADY_EXISTS: name: trace default/dup"):
        c.create_trace(work.manifest("dup"))
    c.delete_trace("dup")
    assert c.list_traces() == []


def test_syscalls_and_swoll_manifest(agent: AgentProcess, work: Workload) -> None:
    c = agent.client()
    table = c.syscalls()
    assert {s.name: s.nr for s in table.syscalls}["getppid"] == GETPPID
    net = c.syscalls("network").syscalls
    assert net and all(getattr(s, "class") == "Network" for s in net)
    swoll = work.manifest("sw").replace(
        "syshub.io/v1alpha1", "tools.swoll.criticalstack.com/v1alpha1"
    )
    info = c.create_trace(swoll, wait_applied=10)
    assert info.applied
    assert '"tools.swoll.criticalstack.com/v1alpha1"' in info.manifest_json
    c.delete_trace("sw")


def test_health_and_reflection(agent: AgentProcess) -> None:
    assert agent.health() == "SERVING"
    with agent.client().endpoint.channel() as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        assert {"syshub.v1.Agent", "grpc.health.v1.Health"} <= services
        fd = db.FindFileContainingSymbol("syshub.v1.Agent")
        assert fd.name == "syshub/v1/agent.proto"
        assert "syshub/v1/event.proto" in fd.dependency


def test_async_client(agent: AgentProcess, work: Workload) -> None:
    async def run() -> list[dict[str, object]]:
        async with AsyncAgentClient(agent.target) as c:
            await c.create_trace(work.manifest("aio"), wait_applied=10)
            got: list[dict[str, object]] = []

            async def read() -> None:
                async for b in c.watch("aio"):
                    got.extend(b.events)
                    if b.final:
                        return

            task = asyncio.create_task(read())
            while not (await c.stats("aio")).streams:
                await asyncio.sleep(0.02)
            work.calls(4)
            while len(got) < 4:
                await asyncio.sleep(0.02)
            info = await c.delete_trace("aio")
            assert info.counters.delivered == 4
            await asyncio.wait_for(task, 10)
            with pytest.raises(AgentError, match="NOT_FOUND"):
                await c.get_trace("aio")
            return got

    got = asyncio.run(run())
    assert [e["syscall"]["nr"] for e in got] == [GETPPID] * 4


def test_unary_calls_answer_while_streams_are_open(agent: AgentProcess, work: Workload) -> None:
    c = agent.client()
    c.create_trace(work.manifest("busy"), wait_applied=10)
    streams = [Collector(agent.client(), "busy") for _ in range(8)]
    _stream_open(agent, "busy", 8)
    t0 = time.monotonic()
    for _ in range(20):
        c.list_traces()
    assert time.monotonic() - t0 < 5
    c.delete_trace("busy")
    for s in streams:
        s.join()
        assert s.final is not None
