"""Level advice by hand: the interactive concurrency and the highest level meeting the p95 SLOs.

``levels`` builds closed rounds at concurrency 1, 2 and 4 on a server with a slot for every request, so each
round's requests run side by side: each has TTFT = its prefill and per-request speed = its decode speed, and
the level's median speed and TTFT p95 are exactly the values chosen for it.
"""

from __future__ import annotations

import pytest

from tests.analysis.helpers import advice_on, run_of, served, sweep, uniform_sweep

Level = tuple[float, float]  # (per-request tok/s, TTFT s)
SOLO: Level = (50.0, 0.5)  # interactive bounds: speed >= 0.8 x 50 = 40 tok/s, TTFT p95 <= 1.5 x 0.5 + 0.25 = 1.0 s


def levels(c2: Level, c4: Level, slo: dict[str, float] | None = None, topic: str = "interactive") -> list[str]:
    """The advice on ``topic`` of rounds at c1 (``SOLO``), c2 and c4 with the given (speed, TTFT) each."""
    chosen = {1: SOLO, 2: c2, 4: c4}
    rows, stages = sweep((1, 2, 4), slots=4, speeds={c: speed for c, (speed, _) in chosen.items()},
                         prefill={c: ttft for c, (_, ttft) in chosen.items()})
    return advice_on(run_of(rows, stages, info={"slo": slo or {}}), topic)


@pytest.mark.parametrize(
    "c2, c4, interactive",
    [
        ((40.5, 0.6), (20.0, 2.0), 2),  # c2 at 81 % of solo speed, TTFT 0.6 <= 1.0; c4 at 40 %
        ((39.5, 0.6), (20.0, 2.0), 1),  # c2 at 79 % of solo speed
        ((45.0, 0.99), (20.0, 2.0), 2),  # c2's TTFT p95 0.99 <= 1.0 s
        ((45.0, 1.01), (20.0, 2.0), 1),  # 1.01 > 1.0 s
        ((39.5, 0.6), (45.0, 0.6), 1),  # c4 would qualify, but c2 falls off first: counted from the bottom
        ((45.0, 0.6), (41.0, 0.9), 4),  # every level within both bounds
    ],
    ids=["speed-81", "speed-79", "ttft-0.99", "ttft-1.01", "gap", "all"],
)
def test_interactive_concurrency(c2: Level, c4: Level, interactive: int):
    assert levels(c2, c4) == [
        f"m@h1: the highest concurrency that keeps interactive latency near solo speed is {interactive} (per-request "
        "speed >= 80 % of 50.0 tok/s and TTFT p95 within 1.5x solo + 0.25 s)"
    ]


# ``uniform_sweep``'s p95s per level (2 slots, 0.5 s prefill + 0.75 s decode = 1.25 s per request): c1 and c2
# run at once, e2e 1.25 s, TTFT 0.5 s; c4's second wave waits 1.25 s: e2e 1.25, 1.25, 2.5, 2.5 -> p95 = 2.5
# (rank 3 x 0.95 = 2.85 lies between the two 2.5s), TTFT 0.5, 0.5, 1.75, 1.75 -> p95 = 1.75.
@pytest.mark.parametrize(
    "slo, advice",
    [
        ({"e2e_p95_s": 2.5}, "the highest measured concurrency meeting e2e_p95_s <= 2.5 is 4"),  # 2.5 <= 2.5
        ({"e2e_p95_s": 2.49}, "the highest measured concurrency meeting e2e_p95_s <= 2.49 is 2"),
        ({"e2e_p95_s": 2.5, "ttft_p95_s": 1.7},  # c4 meets the e2e SLO but not TTFT's: 1.75 > 1.7
         "the highest measured concurrency meeting e2e_p95_s <= 2.5, ttft_p95_s <= 1.7 is 2"),
        ({"e2e_p95_s": 1.2}, "no measured level meets e2e_p95_s <= 1.2, not even 1"),  # 1.25 > 1.2 at c1
    ],
    ids=["at-threshold", "below", "every-slo", "none"],
)
def test_highest_level_within_the_slos(slo: dict[str, float], advice: str):
    assert advice_on(run_of(*uniform_sweep(), info={"slo": slo}), "slo") == [f"m@h1: {advice}"]


def test_the_slo_level_is_counted_from_the_bottom():
    # e2e = TTFT + 100 tokens / speed: c1 0.5 + 2.0 = 2.5 s; c2 0.6 + 100 / 39.5 = 3.13 s > 3; c4 0.6 + 100 / 45 =
    # 2.82 s. c4 meets the SLO, but above a level that does not: the advice stops at c1.
    assert levels((39.5, 0.6), (45.0, 0.6), slo={"e2e_p95_s": 3.0}, topic="slo") == [
        "m@h1: the highest measured concurrency meeting e2e_p95_s <= 3 is 1"
    ]


def test_no_slo_level_without_levels():
    # no stages.csv: every request is in one stage of unknown concurrency, so there is no level to name
    rows = [served(float(i), 0.0, 0.2, 1.0) for i in range(5)]
    assert advice_on(run_of(rows, info={"slo": {"e2e_p95_s": 3.0}}), "slo") == []
