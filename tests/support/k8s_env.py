"""Fixtures and helpers for KubernetesObserver tests: the local API server
(:mod:`support.k8s_apiserver`), a fake CRI whose containers are this very process (so
pid namespaces are read from ``/proc`` for real), and observers that are closed, and
whose threads are checked to be gone, at the end of each test.

Test modules import the fixtures (``from support.k8s_env import api, cri, ...``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.fake_cri import FakeCri
from support.k8s_apiserver import FakeApiServer
from support.k8s_objects import make_pod
from support.observers import Recorder
from syshub.topology.kubernetes import KubernetesObserver


def shows(want: set[str]) -> Callable[[Recorder], bool]:
    """Predicate: the recorder's active containers are exactly ``want``."""
    return lambda r: r.active() == want


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def running_pod(api: FakeApiServer, cri: FakeCri, name: str, **kw: Any) -> dict[str, Any]:
    """Create a Running pod with one container ("main") known to the CRI."""
    containers = kw.pop("containers", ["main"])
    pod = make_pod(name, **kw, containers={c: "" for c in containers})
    ids = {c: cri.add(pod, c) for c in containers}
    for status in pod["status"]["containerStatuses"]:
        status["containerID"] = f"containerd://{ids[status['name']]}"
    return api.create_pod(pod)


@pytest.fixture(autouse=True)
def _no_node_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("SYSHUB_NODE_NAME", raising=False)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.close()


@pytest.fixture
def cri() -> FakeCri:
    return FakeCri()


@pytest.fixture
def make_observer(api: FakeApiServer, cri: FakeCri) -> Iterator[Callable[..., KubernetesObserver]]:
    made: list[KubernetesObserver] = []

    def make(**kw: Any) -> KubernetesObserver:
        endpoint = kw.pop("k8s_endpoint", api.url)
        opts: dict[str, Any] = {
            "cri": cri,
            "resync_interval": 0.2,
            "backoff_initial": 0.05,
            "backoff_max": 0.3,
            "poll_interval": 0.02,
            "request_timeout": 3.0,
        }
        opts.update(kw)
        obs = KubernetesObserver(endpoint, **opts)
        made.append(obs)
        return obs

    yield make
    for obs in made:
        obs.close()
    # no watch or resync thread outlives its observer
    assert wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("syshub-k8s")]
    )
