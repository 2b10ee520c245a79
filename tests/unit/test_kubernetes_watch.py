"""KubernetesObserver's watch protocol against a local API server: bookmarks, 410 Gone
and relists, reconnects with backoff, dropped streams, ERROR events, and configuration
(kubeconfig paths, unusable or missing configuration)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from support.fake_cri import FakeCri
from support.k8s_apiserver import FakeApiServer
from support.k8s_env import _no_node_env, api, cri, make_observer, running_pod, shows, wait_until
from support.observers import START, STOP, Running
from syshub.errors import KubernetesError
from syshub.topology.kubernetes import KubernetesObserver

__all__ = ["_no_node_env", "api", "cri", "make_observer"]  # fixtures


def test_bookmark_advances_resource_version(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "mine", namespace="team-a")
    obs = make_observer(namespace="team-a")
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"mine/main"})
    assert api.wait_for_watches(1)
    listed_rv = obs.resource_version
    assert listed_rv == str(api.resource_version)
    # changes elsewhere move the global resourceVersion; this watch hears nothing of them
    for i in range(3):
        running_pod(api, cri, f"noise-{i}", namespace="team-b")
    time.sleep(0.1)
    assert obs.resource_version == listed_rv
    api.send_bookmark()
    assert wait_until(lambda: obs.resource_version == str(api.resource_version))
    assert obs.stats()["bookmarks"] == 1
    assert run.rec.count() == 1  # a bookmark is not a change
    # the next watch resumes from the bookmark, not from the LIST
    api.drop_watches()
    assert wait_until(lambda: len(api.watch_requests) == 2)
    assert api.watch_requests[0].params["resourceVersion"] == listed_rv
    assert api.watch_requests[1].params["resourceVersion"] == str(api.resource_version)
    assert api.watch_requests[0].params["allowWatchBookmarks"] == "true"
    assert api.watch_requests[0].path == "/api/v1/namespaces/team-a/pods"
    assert len(api.list_requests) == 1
    run.halt()


@pytest.mark.parametrize("gone_mode", ["event", "status"])
def test_gone_relists_and_diffs(
    api: FakeApiServer,
    cri: FakeCri,
    make_observer: Callable[..., KubernetesObserver],
    gone_mode: str,
) -> None:
    api.gone_mode = gone_mode  # type: ignore[assignment]
    running_pod(api, cri, "stays")
    running_pod(api, cri, "goes")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "goes/main"})
    # while the client is cut off, the world changes and the history is compacted
    api.stop()
    api.delete_pod("default", "goes")
    running_pod(api, cri, "new")
    api.expire_history()
    api.start()
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "new/main"})
    assert run.rec.names(STOP) == ["goes/main"]
    assert sorted(run.rec.names(START)) == ["goes/main", "new/main", "stays/main"]  # no dupes
    assert obs.stats()["relists_gone"] >= 1
    assert len(api.list_requests) == 2
    assert obs.resource_version == str(api.resource_version)
    # and the watch goes on from the relisted version
    running_pod(api, cri, "after")
    assert run.rec.wait_for(lambda r: r.active() == {"stays/main", "new/main", "after/main"})
    run.halt()


def test_server_down_then_up_reconnects_with_backoff(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "before")
    obs = make_observer(backoff_initial=0.05, backoff_max=0.2)
    obs.connect()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"before/main"})
    api.stop()
    t0 = time.monotonic()
    assert wait_until(lambda: obs.stats().get("errors", 0) >= 3, timeout=5)
    time.sleep(0.6)
    errors = obs.stats()["errors"]
    elapsed = time.monotonic() - t0
    # backoff: bounded retry rate (at least ~0.1 s apart once capped), but still retrying
    assert errors <= elapsed / 0.1 + 4, (errors, elapsed)
    assert run.thread.is_alive() and run.error is None
    running_pod(api, cri, "during")  # happens while the client cannot see it
    api.start()
    assert run.rec.wait_for(lambda r: r.active() == {"before/main", "during/main"})
    # resumed from the last resourceVersion: no relist needed, no duplicate START
    assert len(api.list_requests) == 1
    assert run.rec.names(START) == ["before/main", "during/main"]
    assert run.halt() < 1.0


def test_connect_fails_when_api_unreachable(
    api: FakeApiServer, make_observer: Callable[..., KubernetesObserver]
) -> None:
    obs = make_observer()
    api.stop()
    with pytest.raises(KubernetesError, match="cannot reach the Kubernetes API at http://127"):
        obs.connect()


def test_watch_dropped_mid_stream_resumes_without_duplicate_starts(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(lambda r: r.active() == {"a/main"})
    running_pod(api, cri, "b")
    assert run.rec.wait_for(lambda r: r.active() == {"a/main", "b/main"})
    rv_seen = obs.resource_version
    assert api.drop_watches() == 1
    running_pod(api, cri, "c")
    assert run.rec.wait_for(lambda r: r.active() == {"a/main", "b/main", "c/main"})
    assert run.rec.names(START) == ["a/main", "b/main", "c/main"]
    assert run.rec.of(STOP) == []
    assert len(api.list_requests) == 1
    assert len(api.watch_requests) == 2
    assert api.watch_requests[1].params["resourceVersion"] == rv_seen
    run.halt()


def test_watch_error_events_are_retried_from_the_same_version(
    api: FakeApiServer, cri: FakeCri, make_observer: Callable[..., KubernetesObserver]
) -> None:
    running_pod(api, cri, "a")
    obs = make_observer()
    run = Running(obs)
    assert run.rec.wait_for(shows({"a/main"}))
    assert api.wait_for_watches(1)
    rv = obs.resource_version
    api.fail_next_watches(2, code=500)
    api.drop_watches()
    assert wait_until(lambda: obs.stats().get("errors", 0) >= 2)
    running_pod(api, cri, "b")
    assert run.rec.wait_for(shows({"a/main", "b/main"}))
    assert [r.params["resourceVersion"] for r in api.watch_requests[1:4]] == [rv, rv, rv]
    assert len(api.list_requests) == 1  # a 500 is not a 410: no relist
    assert run.rec.names(START) == ["a/main", "b/main"]
    run.halt()


# --------------------------------------------------------------------------- configuration


def _kubeconfig(server: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
contexts:
- name: local
  context:
    cluster: local
    user: nobody
current-context: local
users:
- name: nobody
  user: {{}}
"""


def test_kubeconfig_path_is_used(
    api: FakeApiServer,
    cri: FakeCri,
    tmp_path: Path,
    make_observer: Callable[..., KubernetesObserver],
) -> None:
    running_pod(api, cri, "viaconfig")
    path = tmp_path / "config"
    path.write_text(_kubeconfig(api.url))
    obs = make_observer(k8s_endpoint=str(path))
    obs.connect()
    assert [c.pod for c in obs.containers()] == ["viaconfig"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read kubeconfig"),
        ("dir", "cannot read kubeconfig"),
        ("{{{ not yaml", "invalid kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "invalid kubeconfig"),
        ("- just\n- a list\n", "invalid kubeconfig"),
    ],
)
def test_unusable_kubeconfig_raises_kubernetes_error(
    tmp_path: Path, cri: FakeCri, content: str | None, match: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    obs = KubernetesObserver(str(path), cri=cri)
    with pytest.raises(KubernetesError, match=match) as info:
        obs.connect()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    stop = threading.Event()
    stop.set()
    with pytest.raises(KubernetesError):  # run() fails fast on configuration errors too
        obs.run(lambda ev: None, stop)
    assert cri.connects == 0


def test_no_configuration_at_all(
    tmp_path: Path, cri: FakeCri, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesError, match="no Kubernetes configuration"):
        KubernetesObserver(cri=cri).connect()
