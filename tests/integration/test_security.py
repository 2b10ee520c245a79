"""Security properties against the real kernel: the tracer never traces
itself (probe and CLI), a Trace in Kubernetes namespace X sees only the
containers of X unless it selects every namespace, and the probe runs with
only CAP_BPF and CAP_PERFMON (the least privilege it needs; see
docs/reliability.md for the full table)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syshub import Hub, Probe, Trace, syscalls
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf

GETPPID = syscalls.lookup("getppid").nr
SYSHUB = [sys.executable, "-m", "syshub.cli"]
# A child that calls getppid 2,000 times then sleeps (the tracer's own calls
# interleave with it).
CHILD = "import os, time\nfor _ in range(2000): os.getppid()\ntime.sleep(0.2)\n"


def test_the_probe_never_traces_its_own_process() -> None:
    with Probe(1 << 22) as probe:
        probe.add_filter(0, "getppid")
        stop = threading.Event()

        def busy() -> None:  # another thread of the tracer
            while not stop.is_set():
                os.getppid()

        t = threading.Thread(target=busy)
        t.start()
        child = subprocess.run([sys.executable, "-c", CHILD], check=True, timeout=30)
        for _ in range(5000):
            os.getppid()
        stop.set()
        t.join()
        assert child.returncode == 0
        tgids: set[int] = set()
        for _ in range(20):
            b = probe.poll(65536, 100)
            tgids.update(e.tgid for e in b)
        st = probe.stats()
        probe.remove_filter(0, "getppid")
    assert os.getpid() not in tgids
    assert tgids, "the child's calls were not seen"
    key = st.key(0, GETPPID)
    assert key is not None and key.matched >= 2000


def test_the_cli_never_traces_itself(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    argv = ["trace", "--host", "-s", "write,getppid", "--format", "json", "-o", str(out)]
    writer = subprocess.Popen(["sh", "-c", "while :; do echo x >/dev/null; sleep 0.01; done"])
    try:
        proc = subprocess.Popen(
            [*SYSHUB, *argv, "--duration", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate(timeout=60)
    finally:
        writer.kill()
        writer.wait()
    assert proc.returncode == 0, err
    pids = {json.loads(line)["pid"] for line in out.read_text().splitlines() if line}
    # The CLI wrote every event line with write(2): none of them is its own.
    assert writer.pid in pids, "the host's writer was not seen"
    assert proc.pid not in pids


@pytest.fixture
def two_namespaces() -> Iterator[tuple[NamespacedProcess, NamespacedProcess]]:
    argv = [sys.executable, "-c", "import os, time\nwhile 1: os.getppid(); time.sleep(0.002)"]
    with NamespacedProcess(argv) as a, NamespacedProcess(argv) as b:
        a.release()
        b.release()
        yield a, b


def _collect(hub: Hub, trace: Trace, secs: float) -> set[int]:
    sub = hub.subscribe(trace)
    seen: set[int] = set()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        seen.update(ev.pid_ns for ev in sub.get_batch(4096, timeout=0.1))
    return seen


def test_a_trace_sees_only_its_namespace_unless_cluster_wide(
    hub_obs: tuple[Hub, LocalObserver],
    two_namespaces: tuple[NamespacedProcess, NamespacedProcess],
) -> None:
    hub, obs = hub_obs
    a, b = two_namespaces
    ca = Container(id="ca", name="ca", pid=a.pid, pid_ns=a.pid_ns, pod="pa", namespace="team-a")
    cb = Container(id="cb", name="cb", pid=b.pid, pid_ns=b.pid_ns, pod="pb", namespace="team-b")
    obs.start_container(ca)
    obs.start_container(cb)
    only_a = Trace.new("only-a", ["getppid"], namespace="team-a")
    every = Trace.new("every", ["getppid"], namespace="")
    hub.run_trace(only_a)
    hub.run_trace(every)
    assert hub.wait_applied(only_a, timeout=10) and hub.wait_applied(every, timeout=10)
    seen_a = _collect(hub, only_a, 1.0)
    seen_all = _collect(hub, every, 1.0)
    hub.delete_trace(only_a)
    hub.delete_trace(every)
    assert seen_a == {a.pid_ns}
    assert seen_all == {a.pid_ns, b.pid_ns}


# The probe under a reduced capability set: root's permitted set after exec
# is the bounding set, so setpriv's bounding set is exactly what it holds.
PROBE_RUN = textwrap.dedent(
    """
    import os, sys
    from syshub import Probe
    try:
        with Probe(1 << 20) as p:
            p.add_filter(0, "getppid")
            pid = os.fork()
            if pid == 0:
                for _ in range(1000): os.getppid()
                os._exit(0)
            os.waitpid(pid, 0)
            n = sum(len(p.poll(65536, 200)) for _ in range(5))
            print("events", n)
    except Exception as e:
        print(type(e).__name__ + ":", e)
        sys.exit(3)
    """
)


def run_with_caps(caps: str) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed")
    return subprocess.run(
        [setpriv, f"--bounding-set=-all{caps}", "--", sys.executable, "-c", PROBE_RUN],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_probe_runs_with_only_cap_bpf_and_cap_perfmon() -> None:
    r = run_with_caps(",+bpf,+perfmon")
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(r.stdout.split()[-1]) >= 1000, r.stdout


@pytest.mark.parametrize("caps", ["", ",+bpf", ",+perfmon"])
def test_without_them_a_clear_permission_error(caps: str) -> None:
    r = run_with_caps(caps)
    assert r.returncode == 3, r.stdout + r.stderr
    line = r.stdout.strip()
    assert line.startswith("PermissionError:"), line
    assert "CAP_BPF" in line and "CAP_PERFMON" in line
    assert "Traceback" not in r.stderr


HOLD = textwrap.dedent(
    """
    import sys
    from syshub.hub.kernel import NamespaceHold
    hold = NamespaceHold.of(int(sys.argv[1]))
    print("held" if hold is not None else "refused")
    """
)


@pytest.mark.parametrize(
    ("caps", "want"), [(",+bpf,+perfmon", "refused"), (",+bpf,+perfmon,+sys_ptrace", "held")]
)
def test_holding_a_container_namespace_needs_cap_sys_ptrace(caps: str, want: str) -> None:
    """The Hub holds each traced container's pid namespace open
    (/proc/PID/ns/pid of a process with more capabilities than the agent):
    the kernel allows that only with CAP_SYS_PTRACE."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed")
    with subprocess.Popen(["sleep", "30"]) as target:
        try:
            r = subprocess.run(
                [
                    setpriv,
                    f"--bounding-set=-all{caps}",
                    "--",
                    sys.executable,
                    "-c",
                    HOLD,
                    str(target.pid),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            target.kill()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want
