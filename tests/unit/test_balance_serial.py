"""The timing-bound set's order: xdist's first slices carry about equal seconds."""

from __future__ import annotations

from typing import cast

import pytest

from tests.conftest import balance_serial, first_slice_sizes, serial_seconds


class _Item:
    """Enough of a pytest item: a name and its serial marker."""

    def __init__(self, name: str, seconds: float | None) -> None:
        self.name = name
        kwargs = {} if seconds is None else {"seconds": seconds}
        self._mark = pytest.mark.serial(**kwargs).mark

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return self._mark if name == "serial" else None


def _slices(order: list[pytest.Item], nodes: int) -> list[list[pytest.Item]]:
    """The slices xdist's work-stealing scheduler sends first, cut as it cuts them."""
    out, start = [], 0
    for size in first_slice_sizes(len(order), nodes):
        out.append(order[start : start + size])
        start += size
    return out


def test_the_longest_tests_start_on_different_workers_and_loads_even_out() -> None:
    """In the collection's order the first slice held the six longest (422 s against 80 s);
    balanced, each of 4 workers starts with one of the four longest, and the slices' seconds
    differ by at most 25 s."""
    seconds = [125, 55, 55, 50, 50, 50, 37, 35, 30] + [None] * 22
    items = cast(list[pytest.Item], [_Item(f"t{i}", s) for i, s in enumerate(seconds)])
    slices = _slices(balance_serial(items, 4), 4)
    assert sorted(len(s) for s in slices) == [7, 8, 8, 8]
    assert sorted(s[0].name for s in slices) == ["t0", "t1", "t2", "t3"]
    loads = [sum(serial_seconds(i) for i in s) for s in slices]
    assert max(loads) - min(loads) <= 25, loads
    assert sorted(i.name for s in slices for i in s) == sorted(i.name for i in items)


def test_one_worker_keeps_the_collections_order() -> None:
    """Without xdist (or on one worker) nothing is reordered."""
    items = cast(list[pytest.Item], [_Item("a", 5), _Item("b", 50)])
    assert balance_serial(items, 1) == items
