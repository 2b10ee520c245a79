"""The differential test against real strace on real programs (archivers,
git, Python with sqlite, a coreutils pipeline, loopback TCP/UDP/IPv6/unix
sockets, error paths, a SIGKILLed process): every compared field equal, in
every workload (see tests/strace_diff.py; ``-s`` prints the table)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import strace_diff as sd

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[sd.Outcome]:
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (Makefile APT_PACKAGES)")
    outs = sd.run(base=tmp_path_factory.mktemp("strace-diff"))
    print("\n" + sd.report(outs))
    return outs


def test_every_workload_ran(outcomes: list[sd.Outcome]) -> None:
    names = {o.workload for o in outcomes}
    assert {
        "tar+gzip",
        "coreutils",
        "python+sqlite",
        "net",
        "errors",
        "modes",
        "sigkill",
        "restart",
    } <= names
    for o in outcomes:
        calls = [p for p in o.pairs if p.strace is not None and p.ours is not None]
        assert len(calls) >= 5, (o.workload, len(calls))


@pytest.mark.parametrize("category", sd.CATEGORIES)
def test_every_field_equal(outcomes: list[sd.Outcome], category: str) -> None:
    bad = [
        f"{o.workload}: {p.name} {c.arg}: {c.ours!r} vs {c.strace!r}"
        for o in outcomes
        for p, c in o.failures()
        if c.category == category
    ]
    assert not bad, "\n".join(bad[:30])


def test_categories_were_compared(outcomes: list[sd.Outcome]) -> None:
    """No vacuous pass: each category was compared somewhere."""
    for cat in sd.CATEGORIES:
        assert sum(o.rate(cat)[1] for o in outcomes) > 0, cat


def test_killed_call_did_not_return(outcomes: list[sd.Outcome]) -> None:
    (kill,) = [o for o in outcomes if o.workload == "sigkill"]
    cut = [p for p in kill.pairs if p.ours is not None and not p.ours.returned]
    assert any(p.name in ("clock_nanosleep", "nanosleep") for p in cut), [p.name for p in cut]


def test_restarted_call_did_not_return(outcomes: list[sd.Outcome]) -> None:
    """strace's "= ? ERESTARTSYS" is a call that did not return for syshub too."""
    (rs,) = [o for o in outcomes if o.workload == "restart"]
    cut = [p for p in rs.pairs if p.strace is not None and p.strace.restart == "ERESTARTSYS"]
    assert cut and all(p.ours is not None and not p.ours.returned for p in cut)
