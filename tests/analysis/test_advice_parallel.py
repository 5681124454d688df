"""OLLAMA_NUM_PARALLEL advice by hand: the smallest busy count reaching 95 % of the best aggregate, and whether
the last measured step still added more than 10 % aggregate.

A 3-slot FIFO server is swept with closed rounds at concurrency 1, 2, 3 and 8 (8 runs as waves of 3, 3, 2).
Requests of a wave run side by side over the same interval, so each one's busy level is exactly the wave's
size m, and its speed is ``speeds[m]``: per busy count the median speed is ``speeds[m]`` and the aggregate
``m x speeds[m]``. The clients had >= 4 in flight for two waves of 3 while the server never ran 4, so the slot
count is a plain 3, not a lower bound.
"""

from __future__ import annotations

import pytest

from tests.analysis.helpers import advice_on, run_of, sweep


def parallel_advice(speeds: dict[int, float], levels: tuple[int, ...] = (1, 2, 3, 8)) -> str:
    """The one OLLAMA_NUM_PARALLEL advice of a 3-slot server swept over ``levels``."""
    rows, stages = sweep(levels, slots=3, speeds=speeds)
    (text,) = advice_on(run_of(rows, stages), "num_parallel")
    return text


def test_a_last_step_above_10_percent_may_justify_more_slots():
    # aggregates 1 x 100 = 100, 2 x 90 = 180, 3 x 66.6 = 199.8; last step 199.8 / 180 = 1.11 > 1.1.
    # 95 % of the best: 0.95 x 199.8 = 189.81, which 180 misses -> 3. Speed 66.6 / 100 = 67 % of solo.
    assert parallel_advice({1: 100, 2: 90, 3: 66.6}) == (
        "m@h1: per-request speed fell from 100.0 tok/s with 1 busy to 66.6 tok/s with 3 busy (67 %), aggregate "
        "100.0 -> 199.8 tok/s. OLLAMA_NUM_PARALLEL=3 already gives 95 % of the best aggregate throughput; the last "
        "step (2 -> 3 busy) still added 11 % aggregate throughput, so raising OLLAMA_NUM_PARALLEL above 3 may add "
        "more if memory allows (KV cache grows with slots x num_ctx): measure it"
    )


@pytest.mark.parametrize(
    "speed_at_3, of_solo, aggregate, added",
    [
        (66.0, "66 %", "198.0", "10 %"),  # 3 x 66 = 198; 198 / 180 = 1.10: not more than 10 %
        (65.4, "65 %", "196.2", "9 %"),  # 3 x 65.4 = 196.2; 196.2 / 180 = 1.09
    ],
)
def test_a_last_step_of_at_most_10_percent_would_split_throughput(
    speed_at_3: float, of_solo: str, aggregate: str, added: str
):
    # 0.95 x 198 = 188.1 and 0.95 x 196.2 = 186.4: 180 misses both -> 3
    assert parallel_advice({1: 100, 2: 90, 3: speed_at_3}) == (
        f"m@h1: per-request speed fell from 100.0 tok/s with 1 busy to {speed_at_3:.1f} tok/s with 3 busy ({of_solo}), "
        f"aggregate 100.0 -> {aggregate} tok/s. OLLAMA_NUM_PARALLEL=3 already gives 95 % of the best aggregate "
        f"throughput; going from 2 to 3 busy slots added only {added}, so raising it further would split the same "
        "throughput into slower streams"
    )


@pytest.mark.parametrize(
    "speed_at_2, enough",
    [
        (100.0, 2),  # 2 x 100 = 200 >= 0.95 x (3 x 70 = 210) = 199.5
        (99.5, 3),  # 2 x 99.5 = 199 < 199.5
    ],
)
def test_num_parallel_is_the_smallest_busy_count_within_95_percent_of_the_best(speed_at_2: float, enough: int):
    text = parallel_advice({1: 120, 2: speed_at_2, 3: 70})
    assert f"OLLAMA_NUM_PARALLEL={enough} already gives 95 % of the best aggregate throughput;" in text


def test_no_verdict_on_the_last_step_while_the_slots_are_only_a_lower_bound():
    # without the round of 8 the clients never offered a 4th request: ">= 3" slots. The last step's 11 % says
    # nothing about slots beyond the ones measured, so the advice stops after the 95 % count.
    text = parallel_advice({1: 100, 2: 90, 3: 66.6}, levels=(1, 2, 3))
    assert text.endswith("OLLAMA_NUM_PARALLEL=3 already gives 95 % of the best aggregate throughput")
