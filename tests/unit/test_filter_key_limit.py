"""ProbeFilters' filter-key limit (HubConfig.max_filter_keys / the agent's max_filter_keys):
a new key past the limit is refused with a one-line HubError before the probe is asked;
updating an installed key and re-adding after a removal stay possible."""

from __future__ import annotations

from typing import Any, cast

import pytest

from syshub.errors import HubError
from syshub.hub.kernel import ProbeFilters
from syshub.hub.plan import KeyConfig, RemoveFilter, SetFilter
from syshub.probe import Probe


class FakeProbe:
    def __init__(self) -> None:
        self.keys: dict[tuple[int, int], int] = {}

    def add_filter(self, pid_ns: int, nr: int, rate: int, **_: Any) -> None:
        self.keys[(pid_ns, nr)] = rate

    def remove_filter(self, pid_ns: int, nr: int) -> bool:
        return self.keys.pop((pid_ns, nr), None) is not None


def _set(key: tuple[int, int], rate: int = 1) -> SetFilter:
    return SetFilter(key, KeyConfig(sample_rate=rate))


def test_limit_refuses_new_keys_only() -> None:
    probe = FakeProbe()
    filters = ProbeFilters(cast(Probe, probe), max_keys=2)
    filters.apply(_set((1, 257)))
    filters.apply(_set((1, 0)))
    with pytest.raises(HubError, match=r"filter-key limit is reached \(2 keys, setting max_f"):
        filters.apply(_set((1, 1)))
    assert set(probe.keys) == {(1, 257), (1, 0)}
    filters.apply(_set((1, 257), rate=4))  # an installed key may change
    assert probe.keys[(1, 257)] == 4
    filters.apply(RemoveFilter((1, 0)))
    filters.apply(_set((1, 1)))  # room again
    assert set(probe.keys) == {(1, 257), (1, 1)}


def test_no_limit_by_default() -> None:
    probe = FakeProbe()
    filters = ProbeFilters(cast(Probe, probe))
    for nr in range(50):
        filters.apply(_set((7, nr)))
    assert len(probe.keys) == 50
