"""The agent's gRPC service over a real unix socket, on a Hub fed by the
in-memory kernel (support.kernel_model) and a LocalObserver: no root, exact
events and counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.agent_env import Collector, wait_until
from support.hub_env import NR, Env, box, make_env
from syshub.agent import Agent, build_config
from syshub.client import AgentClient, AgentError

MANIFEST = """apiVersion: syshub.io/v1alpha1
kind: Trace
metadata: {name: t1, namespace: default}
spec:
  syscalls: [getppid]
  labelSelector: {matchLabels: {app: demo}}
"""
NS = 4026530000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Env, Agent, AgentClient]]:
    env = make_env(with_probe=True)
    sock = tmp_path / "a.sock"
    cfg = build_config(
        {"socket": str(sock), "node_name": "unit", "shutdown_grace": 2, "state_dir": ""}, {}
    )
    agent = Agent(cfg, hub=env.hub).start()
    client = AgentClient(f"unix://{sock}")
    try:
        yield env, agent, client
    finally:
        client.close()
        agent.stop()
        assert env.probe is not None
        env.probe.close()


def test_events_and_counters_over_the_socket(served: tuple[Env, Agent, AgentClient]) -> None:
    env, agent, c = served
    env.obs.start_container(box("c1", NS, pod="web"))
    info = c.create_trace(MANIFEST, wait_applied=5)
    assert info.applied and info.target == "containers" and info.node == "unit"
    s = Collector(c, "t1")
    assert wait_until(lambda: len(agent.streams()) == 1)
    assert env.probe is not None
    env.probe.play((NS, NR["getppid"]), 10, lose=[3])
    events = s.wait_events(9)
    assert [e["seq"] for e in events] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert events[0]["container"]["pod"] == "web"
    gone = c.delete_trace("t1")
    k = gone.counters
    assert (k.matched, k.delivered, k.dropped, k.sampled_out) == (10, 9, 1, 0)
    s.join()
    fc = s.final.counters
    assert (fc.matched, fc.delivered, fc.dropped, fc.queued) == (9, 9, 0, 0)
    assert agent.streams() == []


def test_slow_stream_drops_only_its_own(served: tuple[Env, Agent, AgentClient]) -> None:
    env, agent, c = served
    env.obs.start_container(box("c1", NS))
    c.create_trace(MANIFEST, wait_applied=5)
    slow = c.watch_raw("t1", queue=5, max_batch=1)
    fast = Collector(c, "t1")
    assert wait_until(lambda: len(agent.streams()) == 2)
    assert env.probe is not None
    env.probe.play((NS, NR["getppid"]), 3000)
    assert len(fast.wait_events(3000)) == 3000
    c.delete_trace("t1")
    fast.join()
    assert fast.final.counters.dropped == 0
    msgs = list(slow)
    last = msgs[-1]
    got = sum(m.count for m in msgs)
    assert last.final and last.counters.matched == 3000 == got + last.counters.dropped
    assert last.counters.dropped > 0


def test_stop_ends_streams_with_final_counters(served: tuple[Env, Agent, AgentClient]) -> None:
    env, agent, c = served
    env.obs.start_container(box("c1", NS))
    c.create_trace(MANIFEST, wait_applied=5)
    s = Collector(c, "t1")
    p = Collector(c, path="default")
    assert wait_until(lambda: len(agent.streams()) == 2)
    assert env.probe is not None
    env.probe.play((NS, NR["getppid"]), 4)
    s.wait_events(4)
    p.wait_events(4)
    agent.stop()
    for x in (s, p):
        x.join()
        assert x.final is not None and x.final.end_reason == "agent stopping"
        assert x.final.counters.delivered == 4
    with pytest.raises(AgentError, match="UNAVAILABLE"):
        c.list_traces()


def test_metrics_without_component(served: tuple[Env, Agent, AgentClient]) -> None:
    _env, agent, c = served
    with pytest.raises(AgentError, match="FAILED_PRECONDITION: metrics"):
        c.metrics()
    agent.service.metrics_snapshot = lambda: {
        "taken_at": 1.5,
        "mode": "node",
        "rows": [{"syscall": "read", "class": "FileSystem", "count": 3, "buckets": [0, 3]}],
        "entries": 1,
        "extra": "ignored",
    }
    m = c.metrics()
    assert (m.node, m.mode, m.entries, m.rows[0].count, list(m.rows[0].buckets)) == (
        "unit",
        "node",
        1,
        3,
        [0, 3],
    )


def test_trace_of_every_namespace_is_found_without_a_namespace(
    served: tuple[Env, Agent, AgentClient],
) -> None:
    """swoll's convention: namespace "" traces every namespace; a reference
    without a namespace finds "default" first, then ""."""
    _env, _agent, c = served
    every = MANIFEST.replace("name: t1, namespace: default", 'name: t2, namespace: ""')
    info = c.create_trace(every, wait_applied=5)
    assert (info.name, info.namespace) == ("t2", "")
    assert c.get_trace("t2", namespace="").namespace == ""
    assert c.stats("t2", namespace="").jobs[0].name == "t2"
    c.create_trace(MANIFEST.replace("name: t1", "name: t2"), wait_applied=5)
    assert c.get_trace("t2", namespace="").namespace == "default"
    assert c.delete_trace("t2", namespace="").namespace == "default"
    assert c.delete_trace("t2", namespace="").namespace == ""
    with pytest.raises(AgentError, match="NOT_FOUND: name: no trace default/t2"):
        c.get_trace("t2", namespace="")


def test_merge_watch_of_two_agents(served: tuple[Env, Agent, AgentClient], tmp_path: Path) -> None:
    """Events of both agents come through one iterator, each with its node;
    an agent that refuses the stream yields its error and the other goes on."""
    from syshub.client import merge_watch

    env, agent, c = served
    env2 = make_env(with_probe=True)
    sock2 = tmp_path / "b.sock"
    cfg = build_config({"socket": str(sock2), "node_name": "unit-b", "state_dir": ""}, {})
    agent2 = Agent(cfg, hub=env2.hub).start()
    c2 = AgentClient(f"unix://{sock2}")
    missing = AgentClient(f"unix://{sock2}")
    try:
        for e, cl in ((env, c), (env2, c2)):
            e.obs.start_container(box("c1", NS))
            cl.create_trace(MANIFEST, wait_applied=5)
        stream = merge_watch([c, c2], name="t1")
        assert wait_until(lambda: len(agent.streams()) == len(agent2.streams()) == 1)
        for e, n in ((env, 2), (env2, 3)):
            assert e.probe is not None
            e.probe.play((NS, NR["getppid"]), n)
        nodes: list[str] = []
        while len(nodes) < 5:
            item = next(stream)
            assert not isinstance(item, Exception)
            nodes += [ev["node"] for ev in item.events]
        assert sorted(nodes) == ["unit"] * 2 + ["unit-b"] * 3
        stream.close()
        assert wait_until(lambda: not agent.streams() and not agent2.streams())
        errors = [x for x in merge_watch([missing], name="nope") if isinstance(x, Exception)]
        assert len(errors) == 1 and "NOT_FOUND" in str(errors[0])
    finally:
        for cl in (c2, missing):
            cl.close()
        agent2.stop()
        assert env2.probe is not None
        env2.probe.close()
