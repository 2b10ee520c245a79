"""The Kubernetes observer when the API server misbehaves, through a fault
proxy (support.faults_k8s): unreachable, slow, answering 500, answering
garbage, and 410 Gone (expired history). In every case the containers already
known stay reported (no STOP for a pod that did not stop), the observer
retries with bounded backoff and counts the failures (``stats()["errors"]``,
what the agent reports), and once the API answers again it catches up:
pods created or deleted meanwhile are started or stopped, none twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("kubernetes")

from support.fake_cri import FakeCri
from support.faults_k8s import FaultProxy, Mode
from support.k8s_apiserver import FakeApiServer
from support.k8s_env import _no_node_env, api, cri, make_observer, running_pod, wait_until
from support.observers import START, STOP, Running
from syshub.topology.kubernetes import KubernetesObserver

__all__ = ["_no_node_env", "api", "cri", "make_observer"]  # fixtures used by name


@pytest.fixture
def proxy(api: FakeApiServer) -> Iterator[FaultProxy]:
    with FaultProxy(api.port, delay=1.0) as p:
        yield p


@pytest.mark.parametrize("fault", ["refuse", "slow", "http500", "garbage"])
def test_api_server_fault_then_recovery(
    fault: Mode,
    api: FakeApiServer,
    cri: FakeCri,
    proxy: FaultProxy,
    make_observer: Callable[..., KubernetesObserver],
) -> None:
    running_pod(api, cri, "before")
    running_pod(api, cri, "goes")
    obs = make_observer(
        k8s_endpoint=proxy.url, backoff_initial=0.05, backoff_max=0.4, request_timeout=0.5
    )
    obs.connect()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"before/main", "goes/main"})
    errors0 = obs.stats().get("errors", 0)
    proxy.set(fault)
    t0 = time.monotonic()
    # Changes the observer cannot see while the fault lasts.
    running_pod(api, cri, "during")
    api.delete_pod("default", "goes")
    time.sleep(3.0)
    elapsed = time.monotonic() - t0
    errors = obs.stats().get("errors", 0) - errors0
    # What is known stays known (no STOP for pods that did not stop) and the
    # thread keeps going.
    assert "before/main" in run.rec.active()
    assert run.thread.is_alive() and run.error is None
    if fault != "slow":  # a slow answer is late, not an error
        assert errors >= 1, obs.stats()
    # Bounded retry rate: never faster than the backoff allows once capped.
    assert errors <= elapsed / 0.05 + 4, (errors, elapsed)
    proxy.set("pass")
    assert run.rec.wait_for(lambda r: r.active() == {"before/main", "during/main"}, timeout=15), (
        run.rec.active(),
        obs.stats(),
    )
    starts = run.rec.names(START)
    assert sorted(starts) == ["before/main", "during/main", "goes/main"], starts
    assert run.rec.names(STOP) == ["goes/main"]
    assert run.halt() < 2.0


def test_gone_history_relists(
    api: FakeApiServer,
    cri: FakeCri,
    proxy: FaultProxy,
    make_observer: Callable[..., KubernetesObserver],
) -> None:
    running_pod(api, cri, "a")
    obs = make_observer(k8s_endpoint=proxy.url)
    obs.connect()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"a/main"})
    proxy.set("refuse")
    running_pod(api, cri, "b")
    api.delete_pod("default", "a")
    api.expire_history()  # the watch resumes from a version the server forgot: 410
    time.sleep(0.5)
    proxy.set("pass")
    assert run.rec.wait_for(lambda r: r.active() == {"b/main"}, timeout=10)
    assert wait_until(lambda: obs.stats().get("relists_gone", 0) >= 1, timeout=5), obs.stats()
    assert run.rec.names(STOP) == ["a/main"]
    assert run.halt() < 2.0
