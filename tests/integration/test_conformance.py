"""Decoder conformance against strace: the same program (tests/progs/conformance.c,
100+ distinct syscalls) traced by strace and by syshub, compared call by call
(see tests/conformance_compare.py). Run with ``-s`` to see the per-syscall report."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import conformance_compare as cc

pytestmark = pytest.mark.bpf

# Known decoder gaps: (syscall, argument) -> ours vs strace. Only flag arguments
# may be listed here; names, return values, errnos, paths and addresses must
# always match. Remove an entry as soon as the decoder handles it (the report
# lists entries that match again).
KNOWN_FLAG_GAPS: dict[tuple[str, str], str] = {
    # Every flag argument of the conformance program decodes as strace does.
}

MIN_DISTINCT = 80


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> cc.Result:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.fail("no C compiler (gcc) to build tests/progs/conformance.c")
    res = cc.run(tmp_path_factory.mktemp("conformance"))
    print("\n" + cc.report(res))
    return res


def _describe(fails: list[tuple[cc.Pair, cc.Check]]) -> str:
    out = []
    for p, c in fails:
        ours = p.ours.to_text() if p.ours is not None else "(no event)"
        theirs = p.strace.text if p.strace is not None else "(no call)"
        out.append(
            f"{p.name} {c.category} {c.arg}: {c.ours!r} vs {c.strace!r}\n"
            f"    syshub: {ours}\n    strace: {theirs}"
        )
    return "\n".join(out)


def test_coverage(result: cc.Result) -> None:
    seen = result.distinct_seen_by_both()
    assert len(seen) >= MIN_DISTINCT, sorted(seen)
    # Every syscall the program makes was seen by both tracers.
    assert seen == set(result.syscalls), sorted(set(result.syscalls) ^ seen)


def test_names_returns_errnos(result: cc.Result) -> None:
    fails = result.failures(["name", "return", "errno"])
    assert not fails, _describe(fails)


def test_paths_and_argv(result: cc.Result) -> None:
    fails = result.failures(["paths", "argv"])
    assert not fails, _describe(fails)


def test_modes(result: cc.Result) -> None:
    fails = result.failures(["modes"])
    assert not fails, _describe(fails)


def test_socket_addresses(result: cc.Result) -> None:
    fails = result.failures(["addr"])
    assert not fails, _describe(fails)


def test_flags(result: cc.Result) -> None:
    fails = result.failures(["flags"])
    unexpected = [(p, c) for p, c in fails if (p.name, c.arg) not in KNOWN_FLAG_GAPS]
    assert not unexpected, _describe(unexpected)
    failing = {(p.name, c.arg) for p, c in fails}
    stale = sorted(set(KNOWN_FLAG_GAPS) - failing)
    if stale:
        print(f"\nKNOWN_FLAG_GAPS entries that match strace now (remove them): {stale}")


def test_claimed_arguments_were_compared(result: cc.Result) -> None:
    """No vacuous pass: each syscall the table claims for paths, flags or socket
    addresses had that category compared at least once."""
    missing = []
    for name in sorted(result.distinct_seen_by_both()):
        d = result.table[name]
        cats = {c.category for p in result.pairs if p.name == name for c in p.checks}
        claims = (
            ("paths", cc.PATH_TYPES),
            ("flags", cc.FLAG_TYPES),
            ("modes", cc.MODE_TYPES),
        )
        for cat, types in claims:
            # open/openat show a mode only with O_CREAT or O_TMPFILE.
            if cat == "modes" and name in ("open", "openat"):
                continue
            if d.claims(types) and cat not in cats:
                missing.append(f"{name}: {cat}")
    assert not missing, missing
