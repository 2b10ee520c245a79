"""The filter plan (:mod:`syshub.hub.plan`), pure: whatever jobs with
whatever rates and capture sizes join and leave whatever keys, applying the
planned operations leaves the kernel holding exactly ``key_config`` of the
live contexts; an unchanged state plans nothing; every job's rate is a
multiple of its key's kernel rate (so each job takes exact multiples)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syshub.hub.plan import (
    DEFAULT_ARGV_MAX,
    DEFAULT_BUF_MAX,
    DEFAULT_STR_MAX,
    CaptureSizes,
    Key,
    KeyConfig,
    RemoveFilter,
    SetFilter,
    apply_ops,
    key_config,
    plan,
    plan_key,
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """Any object with the three sizes and durations is a capture (like
    ``spec.limits.Capture``)."""

    str_max: int = DEFAULT_STR_MAX
    argv_max: int = DEFAULT_ARGV_MAX
    buf_max: int = DEFAULT_BUF_MAX
    durations: bool = False


Want = tuple[int, CaptureSizes | None]

# --------------------------------------------------------------------------- key_config


def test_durations_when_any_context_wants_them() -> None:
    assert key_config([(1, Sizes()), (1, None)]) == KeyConfig(1)
    both = key_config([(1, Sizes()), (4, Sizes(durations=True)), (1, None)])
    assert both is not None and both.durations and both.sample_rate == 1


def test_key_config_examples() -> None:
    assert key_config([]) is None
    assert key_config([(1, None)]) == KeyConfig(
        1, DEFAULT_STR_MAX, DEFAULT_ARGV_MAX, DEFAULT_BUF_MAX
    )
    assert key_config([(4, None), (6, None)]) == KeyConfig(2)
    assert key_config([(3, None), (3, None)]) == KeyConfig(3)
    assert key_config([(0, None)]) == KeyConfig(1)  # rates below 1 read as 1
    small, big = Sizes(16, 4, 8), Sizes(1024, 8, 4096)
    assert key_config([(2, small)]) == KeyConfig(2, 16, 4, 8)
    assert key_config([(2, small), (3, big)]) == KeyConfig(1, 1024, 8, 4096)
    # No capture means the defaults, which also count in the maximum.
    assert key_config([(2, small), (2, None)]) == KeyConfig(2)
    assert key_config([(5, Sizes(8, 64, 1))]) == KeyConfig(5, 8, 64, 1)


def test_plan_key_examples() -> None:
    k: Key = (7, 110)
    assert plan_key(k, None, None) is None
    assert plan_key(k, KeyConfig(2), KeyConfig(2)) is None
    assert plan_key(k, None, KeyConfig(2)) == SetFilter(k, KeyConfig(2))
    assert plan_key(k, KeyConfig(2), KeyConfig(1)) == SetFilter(k, KeyConfig(1))
    assert plan_key(k, KeyConfig(2), KeyConfig(2, str_max=8)) == SetFilter(k, KeyConfig(2, 8))
    assert plan_key(k, KeyConfig(2), None) == RemoveFilter(k)


def test_plan_is_sorted_and_minimal() -> None:
    applied = {(2, 1): KeyConfig(1), (1, 5): KeyConfig(3), (3, 3): KeyConfig(2)}
    desired = {(1, 5): KeyConfig(3), (3, 3): KeyConfig(1), (0, 9): KeyConfig(4)}
    ops = plan(applied, desired)
    assert ops == [
        SetFilter((0, 9), KeyConfig(4)),
        RemoveFilter((2, 1)),
        SetFilter((3, 3), KeyConfig(1)),
    ]
    assert apply_ops(applied, ops) == desired
    assert plan(desired, desired) == []
    assert plan({}, {}) == []


# --------------------------------------------------------------------------- property

KEYS: list[Key] = [(0, 110), (0, 257), (4026531836, 110), (4026532001, 3), (7, 110)]
sizes = st.one_of(
    st.none(),
    st.builds(
        Sizes,
        st.integers(1, 4096),
        st.integers(1, 64),
        st.integers(1, 4096),
    ),
)
join = st.tuples(
    st.just("join"),
    st.integers(0, 5),  # job
    st.sampled_from(KEYS),
    st.integers(1, 12),  # the job's rate (fixed for its life, see ``rates``)
    sizes,
)
leave = st.tuples(st.just("leave"), st.integers(0, 5), st.sampled_from(KEYS))
leave_all = st.tuples(st.just("leave_all"), st.integers(0, 5))
steps = st.lists(st.one_of(join, join, leave, leave_all), min_size=1, max_size=40)


def model_config(wants: list[Want]) -> KeyConfig | None:
    """key_config computed another way: gcd by reduction, maxima of the sizes."""
    if not wants:
        return None
    caps = [c if c is not None else Sizes() for _, c in wants]
    return KeyConfig(
        math.gcd(*(max(1, r) for r, _ in wants)),
        max(c.str_max for c in caps),
        max(c.argv_max for c in caps),
        max(c.buf_max for c in caps),
    )


@settings(max_examples=400, deadline=None)
@given(steps)
def test_applied_plan_equals_live_contexts_property(ops: list[tuple[Any, ...]]) -> None:
    contexts: dict[int, dict[Key, Want]] = {}  # job -> key -> (rate, capture)
    rates: dict[int, int] = {}
    applied: dict[Key, KeyConfig] = {}
    incremental: dict[Key, KeyConfig] = {}  # the hub's way: plan_key on the touched keys
    for step in ops:
        touched: set[Key]
        if step[0] == "join":
            _, job, key, rate, cap = step
            rate = rates.setdefault(job, rate)
            contexts.setdefault(job, {})[key] = (rate, cap)
            touched = {key}
        elif step[0] == "leave":
            _, job, key = step
            contexts.get(job, {}).pop(key, None)
            touched = {key}
        else:
            touched = set(contexts.pop(step[1], {}))
        wants: dict[Key, list[Want]] = {}
        for ctxs in contexts.values():
            for key, w in ctxs.items():
                wants.setdefault(key, []).append(w)
        desired = {k: c for k, w in wants.items() if (c := key_config(w)) is not None}
        # key_config agrees with the independent model, and serves every job.
        assert desired == {k: model_config(w) for k, w in wants.items()}
        for key, ws in wants.items():
            for r, cap in ws:
                assert r % desired[key].sample_rate == 0
                want = cap if cap is not None else Sizes()
                assert desired[key].str_max >= want.str_max
                assert desired[key].argv_max >= want.argv_max
                assert desired[key].buf_max >= want.buf_max
        ops_ = plan(applied, desired)
        # Only keys whose config changed get an operation, one each, in key order.
        changed = {k for k in set(applied) | set(desired) if applied.get(k) != desired.get(k)}
        assert [op.key for op in ops_] == sorted(changed)
        for op in ops_:
            if isinstance(op, SetFilter):
                assert op.config == desired[op.key]
            else:
                assert op.key not in desired
        applied = apply_ops(applied, ops_)
        assert applied == desired
        assert plan(applied, desired) == []  # nothing changed: nothing to do
        for key in touched:
            op = plan_key(key, incremental.get(key), desired.get(key))
            if op is not None:
                incremental = apply_ops(incremental, [op])
        assert incremental == desired


@pytest.mark.parametrize("rates", [(1,), (2, 3), (4, 6, 8), (12, 18), (5, 10, 15)])
def test_each_job_takes_exact_multiples(rates: tuple[int, ...]) -> None:
    """Kernel samples at the gcd g: it emits the multiples of g; a job with
    rate r keeps the multiples of r among them, i.e. exactly 1 in r calls."""
    cfg = key_config((r, None) for r in rates)
    assert cfg is not None
    n = 360
    emitted = [s for s in range(1, n + 1) if s % cfg.sample_rate == 0]
    for r in rates:
        assert [s for s in emitted if s % r == 0] == list(range(r, n + 1, r))
