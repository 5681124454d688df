"""Where the capacity search probes next, on a server whose true capacity the test decides."""

import pytest

from loadgen.run.search import CapacitySearch


def run(search: CapacitySearch, capacity: float) -> list[float]:
    """Drive the search against a server that holds ``capacity``: every level up to it passes."""
    levels = []
    while (level := search.next_level()) is not None:
        assert level not in levels, f"probed {level} twice: {levels}"
        levels.append(level)
        search.record(level, level <= capacity)
    return levels


@pytest.mark.parametrize(
    ("capacity", "probes"),
    [
        # Doubling 1, 2, 4, 8 (fails), then bisect (4, 8): 6 passes, (6, 8): 7 fails -> 6.
        (6, [1, 2, 4, 8, 6, 7]),
        # 1, 2, 4 pass, 8 fails; (4, 8): 6 fails; (4, 6): 5 passes -> 5.
        (5, [1, 2, 4, 8, 6, 5]),
        # The first level fails: nothing below it to try.
        (0, [1]),
        # Up to the bound: 1, 2, 4, 8, 16, then 20 (the bound) passes -> at least 20.
        (100, [1, 2, 4, 8, 16, 20]),
    ],
)
def test_users_double_then_bisect_to_one_user(capacity, probes):
    search = CapacitySearch(start=1, bound=20)
    assert run(search, capacity) == probes
    assert search.last_pass == (min(capacity, 20) or None)
    assert search.outcome == {0: "none", 100: "bound"}.get(capacity, "found")


def test_a_start_above_capacity_bisects_below_it():
    # 8 fails first: (0, 8) -> 4 passes, (4, 8) -> 6 fails, (4, 6) -> 5 fails -> 4.
    search = CapacitySearch(start=8, bound=64)
    assert run(search, 4) == [8, 4, 6, 5]
    assert (search.last_pass, search.first_fail) == (4, 5)


def test_growth_always_adds_at_least_one_user():
    # growth 1.2 from 1 would round to 1 again: 2, 3, 4 (ceil(3 * 1.2) = 4), 5, 6...
    search = CapacitySearch(start=1, bound=6, growth=1.2)
    assert run(search, 10) == [1, 2, 3, 4, 5, 6]


def test_rates_bisect_down_to_the_precision():
    # 1, 2, 4 pass, 8 fails; 6 passes; 7 fails; (6, 7) is 1 apart, within precision 1.5 -> 6 req/s.
    search = CapacitySearch(start=1.0, bound=32.0, precision=1.5, whole=False)
    assert run(search, 6.5) == [1.0, 2.0, 4.0, 8.0, 6.0, 7.0]
    assert search.last_pass == 6.0


def test_rates_that_all_fail_are_halved_until_the_precision():
    search = CapacitySearch(start=4.0, bound=32.0, precision=0.5, whole=False)
    assert run(search, 0.1) == [4.0, 2.0, 1.0, 0.5]
    assert search.outcome == "none"
