"""The seed's Hub and Job API on the in-memory kernel: ``Job.write_event``,
``Job.duration`` (zero when unset), ``Hub.must_run`` (blocks; on error logs and exits
the process), and a Trace of every namespace (``metadata.namespace: ""``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from support.hub_env import NR, Env, box, demo, drain, events, running_env
from support.kernel_model import KernelModel
from syshub import Hub, HubConfig, Job, Trace, TraceEvent, TraceState
from syshub.topology import LocalObserver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env() -> Iterator[Env]:
    with running_env() as e:
        yield e


def test_job_duration_is_a_timedelta_zero_when_unset() -> None:
    assert Job(Trace.new("a", ["getppid"])).duration == timedelta(0)
    assert Job(Trace.new("b", ["getppid"], duration="1m30s")).duration == timedelta(seconds=90)
    zero = Trace.from_dict(
        {
            "apiVersion": "tools.swoll.criticalstack.com/v1alpha1",
            "kind": "Trace",
            "metadata": {"name": "c"},
            "spec": {"syscalls": ["getppid"], "duration": "0s"},
        }
    )
    assert Job(zero).duration == timedelta(0)


def test_zero_duration_runs_until_deleted(env: Env) -> None:
    t = demo("z", ["getppid"], duration="0s")
    job = env.run(t)
    env.obs.start_container(box("c1", 1001))
    env.check({(1001, NR["getppid"]): 1})
    assert not job.wait(timeout=0.5)
    assert t.status.state is TraceState.RUNNING
    env.hub.delete_trace(t)
    assert t.status.state is TraceState.COMPLETE


def test_job_write_event_publishes_like_a_routed_event(env: Env) -> None:
    mine, other = demo("mine", ["openat"]), demo("other", ["openat"])
    job = env.run(mine)
    env.run(other)
    job_sub, other_sub = env.hub.subscribe(mine), env.hub.subscribe(other)
    path_sub = env.hub.subscribe_path(("default", "p1", "c1"))
    elsewhere = env.hub.subscribe_path(("default", "p2"))
    tev = TraceEvent(events(2001, "openat", [1])[0], box("a", 2001, name="c1", pod="p1"))
    job.write_event(env.hub, tev)
    assert drain(job_sub) == [tev]
    assert drain(path_sub) == [tev]
    assert drain(other_sub) == [] and drain(elsewhere) == []
    env.hub.write_job_event(job.job_id, tev)  # the job-stream half, by id
    assert drain(job_sub) == [tev] and drain(path_sub) == []


def test_every_namespace_trace_follows_containers_of_all_namespaces(env: Env) -> None:
    t = Trace.new("all", ["getppid"], namespace="")
    assert t.all_namespaces
    env.run(t)
    one = demo("one", ["getppid"], namespace="a")
    env.run(one)
    env.obs.start_container(box("ca", 1001, namespace="a"))
    env.obs.start_container(box("cb", 1002, namespace="b", app="other"))
    nr = NR["getppid"]
    env.check({(1001, nr): 1, (1002, nr): 1})
    sub, sub_one = env.hub.subscribe(t), env.hub.subscribe(one)
    env.hub.route(env.kernel.calls((1001, nr), 2) + env.kernel.calls((1002, nr), 3))
    got = drain(sub)
    assert sorted({ev.container.namespace for ev in got}) == ["a", "b"]
    assert len(got) == 5
    assert {ev.container.namespace for ev in drain(sub_one)} == {"a"}


def test_must_run_blocks_until_stopped() -> None:
    hub = Hub(HubConfig(), LocalObserver(), filters=KernelModel())
    done = threading.Event()

    def body() -> None:
        hub.must_run()
        done.set()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    time.sleep(0.2)
    assert not done.is_set(), "must_run returned before stop"
    hub.stop()
    assert done.wait(5)


def test_must_run_logs_and_exits_on_error() -> None:
    script = textwrap.dedent(
        """
        from syshub import Hub, HubConfig
        from syshub.topology import LocalObserver

        class Broken(LocalObserver):
            def connect(self):
                raise ConnectionError("no cluster at https://10.0.0.1:6443")

        Hub(HubConfig(), Broken(), filters=object()).must_run()
        print("not reached")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 1
    assert "not reached" not in proc.stdout
    assert "hub failed: ConnectionError: no cluster at https://10.0.0.1:6443" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_must_run_ctrl_c_stops_and_exits_130() -> None:
    script = textwrap.dedent(
        """
        from syshub import Hub, HubConfig
        from syshub.topology import LocalObserver

        hub = Hub(HubConfig(), LocalObserver(), filters=object())
        print("ready", flush=True)
        hub.must_run()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.5)  # inside must_run's wait
        assert proc.poll() is None, "must_run returned on its own"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
