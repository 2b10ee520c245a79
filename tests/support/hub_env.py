"""A Hub on the in-memory kernel (:mod:`support.kernel_model`) and a
:class:`~syshub.topology.LocalObserver`, for unit tests: containers are
announced by hand, events fed with ``hub.route``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from support.kernel_model import FakeEvent, KernelModel, ProbeModel, fake_events
from syshub import Hub, HubConfig, Job, JobStats, Subscription, Trace, syscalls
from syshub.hub.plan import Key, KeyConfig, key_config
from syshub.topology import Container, LocalObserver

NR = {name: syscalls.lookup(name).nr for name in ("getppid", "openat", "close", "read")}


def events(pid_ns: int, name: str, seqs: Iterable[int]) -> list[FakeEvent]:
    return fake_events(pid_ns, name, seqs)


def box(
    cid: str,
    pid_ns: int,
    *,
    name: str | None = None,
    pod: str = "p1",
    namespace: str = "default",
    app: str = "demo",
    pid: int | None = None,
) -> Container:
    return Container(
        id=cid,
        name=name or cid,
        pid=pid if pid is not None else pid_ns % 100_000,
        pid_ns=pid_ns,
        pod=pod,
        namespace=namespace,
        labels={"app": app},
    )


@dataclass
class Env:
    hub: Hub
    obs: LocalObserver
    kernel: KernelModel
    probe: ProbeModel | None = None

    def run(self, trace: Trace, **kw: Any) -> Job:
        """Run ``trace`` and wait until its job follows container events."""
        job = self.hub.run_trace(trace, **kw)
        assert self.hub.wait_applied(trace, timeout=5), f"job {job.job_id} never applied"
        return job

    def planned(self) -> dict[Key, KeyConfig]:
        """The filter configs the live contexts need, by the plan's rule."""
        out: dict[Key, KeyConfig] = {}
        for key, bucket in self.hub._nsmap.items():
            cfg = key_config((c.rate, c.capture) for c in bucket)
            if cfg is not None:
                out[key] = cfg
        return out

    def check(self, expected: dict[tuple[int, int], int] | None = None) -> None:
        """The kernel holds exactly what live contexts need."""
        desired = self.hub.desired_filters()
        assert self.kernel.current() == desired
        assert self.kernel.configs() == self.planned()
        if expected is not None:
            assert desired == expected


def make_env(*, with_probe: bool = False, **config: Any) -> Env:
    """A started hub; ``with_probe``: its reader loop polls a :class:`ProbeModel`."""
    obs = LocalObserver()
    kernel = KernelModel()
    probe = ProbeModel(kernel) if with_probe else None
    hub = Hub(HubConfig(**config), obs, probe=probe, filters=kernel)  # type: ignore[arg-type]
    hub.start()
    return Env(hub, obs, kernel, probe)


@contextmanager
def running_env(*, with_probe: bool = False, **config: Any) -> Iterator[Env]:
    e = make_env(with_probe=with_probe, **config)
    try:
        yield e
    finally:
        e.hub.stop()
        if e.probe is not None:
            e.probe.close()
    assert e.kernel.current() == {}
    assert e.kernel.scopes == {}


def demo(name: str, calls: list[str], **kw: Any) -> Trace:
    kw.setdefault("labels", "app=demo")
    return Trace.new(name, calls, **kw)


def drain(sub: Subscription) -> list[Any]:
    return sub.get_batch(1 << 20, timeout=0)


def totals(js: JobStats) -> tuple[int, int, int, int]:
    """(matched, delivered, dropped, sampled_out) of a job."""
    return (js.matched, js.delivered, js.dropped, js.sampled_out)


def balanced(js: JobStats) -> bool:
    """matched == delivered + dropped + sampled_out, per key and in total."""
    return js.matched == js.delivered + js.dropped + js.sampled_out and all(
        k.matched == k.delivered + k.dropped + k.sampled_out for k in js.keys
    )


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()
