"""The agent's trace files (syshub.agent.trace_store): round trip, modes,
atomic replacement, what load() skips; the state_dir setting. Pure."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syshub import Trace
from syshub.agent import build_config
from syshub.agent.trace_store import StoredTrace, TraceStore, process_start
from syshub.hub import Target
from syshub.spec import limits


def stored(name: str, duration: float | None = None) -> StoredTrace:
    trace = Trace.new(name, ["getppid", "openat"], namespace="team", duration=duration)
    return StoredTrace(
        trace,
        f"job-{name}",
        datetime.now(UTC) - timedelta(seconds=1),
        Target.process(os.getpid()),
        limits.Capture(str_max=64, argv_max=4, buf_max=32),
        process_start(os.getpid()),
    )


def test_a_trace_round_trips_in_a_0600_file(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "state")
    s = stored("a", duration=60)
    store.save(s)
    (f,) = (tmp_path / "state").iterdir()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    (back,) = store.load()
    assert back.trace.to_dict() == s.trace.to_dict() and back.trace.key == ("team", "a")
    assert (back.job_id, back.started, back.target) == (s.job_id, s.started, s.target)
    assert back.capture == s.capture and back.pid_start == s.pid_start
    left = back.remaining()
    assert left is not None and timedelta(seconds=58) < left <= timedelta(seconds=59)
    store.save(stored("a"))  # replaced in place, no temporary file left
    assert [p.name for p in (tmp_path / "state").iterdir()] == [f.name]
    assert store.load()[0].remaining() is None
    store.remove(("team", "a"))
    store.remove(("team", "a"))  # gone already: nothing to do
    assert store.load() == []


def test_load_skips_what_does_not_parse_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TraceStore(tmp_path)
    store.save(stored("good"))
    (tmp_path / "trace-junk.json").write_text("{not json")
    (tmp_path / "trace-old.json").write_text('{"version": 0}')
    moved = store.path(("team", "good")).read_text()
    (tmp_path / "trace-moved.json").write_text(moved)  # a name that is not its trace's
    (tmp_path / "other.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING, logger="syshub.agent"):
        assert [s.trace.name for s in store.load()] == ["good"]
    skipped = [r for r in caplog.records if r.getMessage() == "stored trace skipped"]
    assert len(skipped) == 3
    assert all("\n" not in str(getattr(r, "error", "")) for r in skipped)
    assert TraceStore(tmp_path / "missing").load() == []


def test_state_dir_setting() -> None:
    assert build_config({}, {}).state_dir == "/var/lib/syshub/agent"
    assert build_config({}, {"SYSHUB_AGENT_STATE_DIR": "/x"}).state_dir == "/x"
    assert build_config({"state_dir": ""}, {"SYSHUB_AGENT_STATE_DIR": "/x"}).state_dir == ""
