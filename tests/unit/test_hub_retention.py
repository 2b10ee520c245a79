"""The Hub forgets a deleted job when told (forget_job), and the agent's
trace registry tells it once KEEP_DELETED later traces were deleted: a
long-lived agent does not keep every trace it ever ran. Pure: the in-memory
kernel."""

from __future__ import annotations

import pytest

from support.hub_env import box, running_env
from syshub import Trace
from syshub.agent import traces as registry_mod
from syshub.agent.traces import TraceRegistry
from syshub.hub.retention import forget_job

NS = 4026531000


def test_forget_job_drops_only_stopped_jobs() -> None:
    with running_env() as env:
        env.obs.start_container(box("c1", NS))
        a = env.hub.run_trace(Trace.new("a", ["getppid"]))
        b = env.hub.run_trace(Trace.new("b", ["getppid"]))
        assert env.hub.wait_applied(a, 5) and env.hub.wait_applied(b, 5)
        assert not forget_job(env.hub, a.job_id)  # running
        env.hub.delete_trace(a)
        assert set(env.hub.stats().jobs) == {a.job_id, b.job_id}
        assert forget_job(env.hub, a.job_id)
        assert set(env.hub.stats().jobs) == {b.job_id}
        assert not forget_job(env.hub, a.job_id)  # gone already
        assert not forget_job(env.hub, "no-such-job")
        env.hub.delete_trace(b)


def test_the_registry_keeps_the_last_deleted_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_mod, "KEEP_DELETED", 2)
    with running_env() as env:
        env.obs.start_container(box("c1", NS))
        reg = TraceRegistry(env.hub)
        ids = []
        for i in range(5):
            e = reg.create(Trace.new(f"t{i}", ["getppid"]), wait=5)
            ids.append(e.job.job_id)
            reg.delete(e.key)
        assert set(env.hub.stats().jobs) == set(ids[-2:])
        # A trace created again under an ended one's name: the old job counts as deleted.
        first = reg.create(Trace.new("same", ["getppid"]), wait=5)
        env.hub.delete_trace(first.job)  # ended, still listed
        reg.create(Trace.new("same", ["getppid"]), wait=5)
        assert first.job.job_id in env.hub.stats().jobs
        assert ids[-2] not in env.hub.stats().jobs
