"""The Rust encoders on real recorded batches: the conformance program (100+
distinct syscalls: strings, buffers, socket addresses, flags, structs, argv,
failures) traced with roomy and with tiny capture sizes (truncated strings,
argv and buffers). For every event of every batch: the JSON line equals
``json.dumps(to_dict())``, the text line ``to_text()``, the protobuf
EventBatch the document. Then ``syshub trace -o json`` through the batch
path, and the accounting of a slow batch subscriber on the real kernel."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import run, summary

import conformance_compare as cc
from encode_checks import check_batch
from support.hub_env import NR, balanced
from support.hub_kernel import container, kernel_filters, run_job
from syshub import Hub, Probe, Trace
from syshub.nsproc import NamespacedProcess
from syshub.topology import Container, LocalObserver

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cc.compile_prog(tmp_path_factory.mktemp("enc"))


def recorded_batches(prog: Path, work: Path, **capture: int) -> tuple[list[Any], int]:
    """The batches (as polled) of one traced run of the conformance program."""
    probe = Probe(1 << 24)
    batches: list[Any] = []
    try:
        with NamespacedProcess(
            [str(prog), str(work)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as child:
            for s in cc.traced_syscalls():
                probe.add_filter(child.pid_ns, s, 1, **capture)
            child.release()
            assert child.wait(timeout=30) == 0
            end = time.monotonic() + 10
            while time.monotonic() < end:
                b = probe.poll(timeout_ms=300)
                if b:
                    batches.append(b)
                elif probe.stats().drained:
                    break
            ns = child.pid_ns
        assert not [k for k in probe.stats().keys if k.dropped]
    finally:
        probe.close()
    return batches, ns


@pytest.mark.parametrize(
    "capture",
    [{"str_max": 4096, "buf_max": 4096}, {"str_max": 4, "argv_max": 1, "buf_max": 2}],
    ids=["roomy", "tiny"],
)
def test_recorded_batches_encode_as_their_documents(
    conformance: Path, tmp_path: Path, capture: dict[str, int]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    batches, ns = recorded_batches(conformance, work, **capture)
    box = Container(id="id-conf", name="conf", pid=1, pid_ns=ns, labels={"app": "x\u00e9"})
    checked = sum(check_batch(b, {ns: box}) for b in batches)
    names = {ev.syscall for b in batches for ev in b}
    assert checked > 150 and len(names) >= 80, (checked, sorted(names))
    kinds = {type(v).__name__ for b in batches for ev in b for v in ev.args.values()}
    assert {"int", "str", "dict", "list"} <= kinds
    if capture["str_max"] == 4:
        assert any(ev.truncated_args for b in batches for ev in b)
    # The records replayed into one batch: the same lines, and selections of it.
    raws = [b.raw(i) for b in batches for i in range(len(b))]
    from syshub.probe import Batch

    whole = Batch.from_records(raws)
    assert check_batch(whole, {ns: box}, [(0, 10), (20, 21), (30, len(whole))]) > 100


def test_cli_json_lines_go_through_the_batch_path(tmp_path: Path, known_calls: Path) -> None:
    out = tmp_path / "events.json"
    r = run("trace", "-s", "openat,execve,exit_group", "-o", "json", "-o", str(out), "--")
    assert r.returncode == 2  # no command: usage error, nothing written
    r = run(
        "trace",
        "-s",
        "openat,connect,execve,exit_group",
        "-o",
        "json",
        "-o",
        str(out),
        "--",
        str(known_calls),
        "known",
    )
    assert r.returncode == 7, r.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    s = summary(r.stderr)
    assert s["printed"] == len(docs) == 6 and s["matched"] == 6
    names = [d["syscall"]["name"] for d in docs]
    assert names == [
        "sys_execve",
        "sys_openat",
        "sys_openat",
        "sys_connect",
        "sys_execve",
        "sys_exit_group",
    ]
    opened = docs[1]
    assert opened["args"]["filename"] == "/etc/hostname" and opened["returned"] is True
    assert docs[2]["error"] == "ENOENT" and docs[2]["errno"] == 2
    assert docs[-1]["returned"] is False and docs[-1]["return"] is None
    assert all(d["container"] is not None for d in docs)
    text = run("trace", "-s", "openat", "-o", "text", "-o", "-", "--", str(known_calls), "known")
    assert 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3' in text.stdout


def test_slow_batch_subscriber_on_the_kernel(
    hub_obs: tuple[Hub, LocalObserver], known_calls: Path
) -> None:
    """A batch subscriber holding 1000 events while 50k calls are made loses
    the rest, counted: per subscriber delivered + dropped = routed to it; per
    job matched = delivered + dropped + sampled_out; a second batch
    subscriber of the same job gets every event."""
    hub, obs = hub_obs
    n = 50_000
    t = Trace.new("slowb", ["getppid"], labels="app=demo")
    run_job(hub, t)
    slow = hub.subscribe_batches(t, maxsize=1000)
    full = hub.subscribe_batches(t)
    got_full = 0
    with NamespacedProcess([str(known_calls), "getppid", str(n)]) as child:
        obs.start_container(container("getppid", child))
        assert (child.pid_ns, NR["getppid"]) in kernel_filters(hub)
        child.release()
        while child.poll() is None:
            got_full += sum(len(c) for c in full.get_chunks(1 << 20, timeout=0.05))
        assert child.wait(timeout=30) == 0
        hub.delete_trace(t)
    while chunks := full.get_chunks(1 << 20, timeout=0):
        got_full += sum(len(c) for c in chunks)
    got_slow = sum(len(c) for c in slow.get_chunks(1 << 20, timeout=0))
    js = hub.stats().jobs[t.status.job_id]
    assert js.matched == n and balanced(js)
    ss, fs = slow.stats(), full.stats()
    assert got_slow == ss.delivered == 1000 and ss.queued == 0
    assert ss.delivered + ss.dropped == js.delivered
    assert got_full == fs.delivered == js.delivered and fs.dropped == 0


def test_cli_swoll_json_is_swolls_document_per_event(known_calls: Path) -> None:
    r = run("trace", "-s", "openat", "-o", "swoll-json", "-o", "-", "--", str(known_calls), "known")
    assert r.returncode == 7, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert summary(r.stderr)["printed"] == len(docs) == 2
    for d in docs:
        assert d["syscall"]["name"] == "sys_openat"
        assert "container" in d and "ns_pid" not in d  # swoll's keys, not ours
    assert [d["return"] for d in docs][1] == -2
