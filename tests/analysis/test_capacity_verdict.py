"""The maths of one capacity probe's verdict (``analysis.capacity``), worked by hand: the Wilson interval, the
bootstrap interval of a percentile, pass / fail / too close to call, the two early stops, and the one-line
answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.capacity import bootstrap_interval, capacity_line, clearly_failed, judge, queue_growing, wilson
from analysis.slo import Slo

E2E_P95 = Slo("e2e_p95_s", 20.0)


def probe_records(e2e: list[float], failed: int = 0, workload: str = "chat") -> pd.DataFrame:
    """Measured requests of one probe: successes with these e2e times, then ``failed`` failures."""
    return pd.DataFrame({"workload": workload, "ok": [True] * len(e2e) + [False] * failed,
                         "e2e_s": [*e2e, *[np.nan] * failed]})


# --- wilson ----------------------------------------------------------------------------------------------------
def test_wilson_matches_the_hand_computed_interval():
    # 8 of 10 at 95 %: z = 1.959964, z^2 = 3.841459, p = 0.8.
    # centre = (p + z^2/2n) / (1 + z^2/n) = (0.8 + 0.192073) / 1.384146 = 0.716740
    # half   = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 1.959964 x sqrt(0.016 + 0.009604) / 1.384146 = 0.226577
    low, high = wilson(8, 10, 0.95)
    assert low == pytest.approx(0.490163, abs=1e-5)
    assert high == pytest.approx(0.943317, abs=1e-5)


def test_wilson_of_nothing_is_everything_and_stays_within_0_and_1():
    assert wilson(0, 0, 0.9) == (0.0, 1.0)
    low, high = wilson(0, 10, 0.9)
    assert low == 0.0 and 0 < high < 1
    low, high = wilson(10, 10, 0.9)
    assert 0 < low < 1 and high == 1.0


# --- bootstrap_interval ----------------------------------------------------------------------------------------
def test_bootstrap_interval_holds_the_true_percentile_and_repeats_for_a_seed():
    # 1000 draws of an exponential(1): its true p95 is -ln(0.05) = ln 20 = 2.9957.
    values = np.random.default_rng(1).exponential(1.0, 1000)
    low, high = bootstrap_interval(values, 0.95, 0.9, 1000, seed=0)
    assert low < np.log(20) < high
    assert low < np.quantile(values, 0.95) < high  # around the sample's own p95
    # Asymptotically the p95's standard error is sqrt(0.95 x 0.05 / 1000) / f(ln 20) = 0.00689 / 0.05 = 0.138, so a
    # 90 % interval spans about 2 x 1.645 x 0.138 = 0.45: the bootstrap's is of that order, not the data's range.
    assert 0.2 < high - low < 0.9
    assert bootstrap_interval(values, 0.95, 0.9, 1000, seed=0) == (low, high)  # the same records, the same interval
    assert bootstrap_interval(values, 0.95, 0.9, 1000, seed=1) != (low, high)


def test_bootstrap_interval_of_identical_values_is_that_value():
    assert bootstrap_interval(np.full(20, 3.0), 0.95, 0.9, 200, seed=0) == (3.0, 3.0)


# --- judge -----------------------------------------------------------------------------------------------------
def test_a_probe_well_within_the_threshold_passes():
    # 20 requests of 1 s each against e2e p95 <= 20 s: every resample's p95 is 1 s, so the interval is [1, 1].
    verdict = judge(probe_records([1.0] * 20), [E2E_P95])
    (check,) = verdict.checks
    assert (check.observed, check.low, check.high, check.n) == (1.0, 1.0, 1.0, 20)
    assert verdict.verdict == "pass" and verdict.passed
    assert check.describe() == "e2e p95 1 s <= 20 s"


def test_a_probe_well_beyond_the_threshold_fails():
    verdict = judge(probe_records([30.0] * 20), [E2E_P95])
    assert verdict.verdict == "fail" and not verdict.passed
    assert verdict.limiting is not None and verdict.limiting.describe() == "e2e p95 30 s > 20 s"


def test_a_percentile_whose_interval_straddles_the_threshold_is_too_close_to_call():
    # e2e 1..20 s: p95 = 1 + 0.95 x 19 = 19.05 s (linear), just above 19 s. A resample's p95 sits near its 19th
    # value, which is 18 or less whenever at most one of the 20 draws is 19 or 20: 0.9^20 + 20 x 0.1 x 0.9^19
    # = 39 % of resamples, so the interval's low end (5th percentile of them) is below 19; its high end is 20.
    verdict = judge(probe_records([float(v) for v in range(1, 21)]), [Slo("e2e_p95_s", 19.0)])
    (check,) = verdict.checks
    assert check.observed == pytest.approx(19.05)
    assert check.low < 19.0 < check.high
    assert verdict.verdict == "close" and not verdict.passed
    assert "too close to call" in check.describe()


def test_too_few_values_cannot_be_judged():
    verdict = judge(probe_records([1.0] * 9), [E2E_P95])  # MIN_VALUES is 10
    assert verdict.verdict == "close" and not verdict.passed
    assert verdict.checks[0].describe() == "e2e p95: 9 values, too few to judge"


def test_error_rate_is_a_count_and_any_failed_check_fails_the_probe():
    # 18 successes of 1 s and 2 failures: e2e passes; error rate 2/20 = 10 % > 5 %, exactly, with no interval.
    verdict = judge(probe_records([1.0] * 18, failed=2), [E2E_P95, Slo("error_rate", 0.05)])
    checks = {c.slo: c for c in verdict.checks}
    assert checks["e2e_p95_s"].verdict == "pass"
    errors = checks["error_rate"]
    assert (errors.observed, errors.low, errors.high, errors.n) == (0.1, 0.1, 0.1, 20)
    assert verdict.verdict == "fail"
    assert verdict.limiting is errors  # the failed check decides, not the closer one
    assert errors.describe() == "error rate 10.0% > 5.0%"


def test_a_workload_slo_overrides_the_run_wide_one_for_that_workload():
    records = pd.concat([probe_records([10.0] * 20, workload="chat"), probe_records([10.0] * 20, workload="batch")])
    verdict = judge(records, [E2E_P95, Slo("e2e_p95_s", 5.0, "batch")])
    assert {(c.workload, c.threshold, c.verdict) for c in verdict.checks} == {("chat", 20.0, "pass"),
                                                                              ("batch", 5.0, "fail")}


# --- the early stops -------------------------------------------------------------------------------------------
def test_half_the_requests_beyond_a_p95_threshold_clearly_failed():
    # 20 of 40 above 20 s at 90 % (z = 1.644854, z^2 = 2.705543): p = 0.5,
    # centre = (0.5 + 0.033819) / 1.067639 = 0.5, half = 1.644854 x sqrt(0.00625 + 0.000423) / 1.067639 = 0.125854;
    # the lower bound 0.374 exceeds 1 - 0.95 = 0.05: more than 5 % will break it, whatever the rest do.
    failed = clearly_failed(probe_records([1.0] * 20 + [30.0] * 20), [E2E_P95], confidence=0.9)
    assert failed is not None and failed.slo == "e2e_p95_s" and not failed.passed


def test_two_in_forty_beyond_a_p95_threshold_is_no_early_stop():
    # 2 of 40: p = 0.05, centre = (0.05 + 0.033819) / 1.067639 = 0.078509,
    # half = 1.644854 x sqrt(0.0011875 + 0.000423) / 1.067639 = 0.061825: lower bound 0.0167 < 0.05.
    assert clearly_failed(probe_records([1.0] * 38 + [30.0] * 2), [E2E_P95], confidence=0.9) is None


def test_failures_clearly_beyond_the_error_rate_stop_early():
    # 10 of 20 failed against error_rate <= 5 %: p = 0.5, n = 20, lower bound 0.5 - 0.17 = 0.33 > 0.05.
    failed = clearly_failed(probe_records([1.0] * 10, failed=10), [Slo("error_rate", 0.05)], confidence=0.9)
    assert failed is not None and failed.slo == "error_rate"
    assert clearly_failed(probe_records([1.0] * 5, failed=4), [Slo("error_rate", 0.05)]) is None  # 9 < MIN_VALUES


def test_latency_rising_through_every_third_is_a_growing_queue():
    # 30 requests, e2e 1..30 s in start order: thirds' medians 5.5, 15.5, 25.5 rise, and 25.5 > 2 x 5.5.
    t_start = pd.Series(np.arange(30.0))
    assert queue_growing(t_start, pd.Series(np.arange(1.0, 31.0)))
    # The order is the start times', not the rows': the same requests listed backwards still grow.
    assert queue_growing(t_start[::-1].reset_index(drop=True), pd.Series(np.arange(30.0, 0.0, -1.0)))


@pytest.mark.parametrize(("latency", "why"), [
    (np.full(30, 5.0), "flat: a settled queue"),
    (10 + np.arange(30.0) * 0.1, "rising, but the last third's median 12.45 < 2 x 10.45"),
    (np.arange(1.0, 30.0), "29 values: fewer than 3 x MIN_VALUES"),
])
def test_latency_that_settles_or_barely_rises_is_no_growing_queue(latency, why):
    assert not queue_growing(pd.Series(np.arange(float(len(latency)))), pd.Series(latency)), why


# --- capacity_line ---------------------------------------------------------------------------------------------
ANSWER = {"unit": "users", "value": 6, "last_pass": 6, "first_fail": 7, "outcome": "found", "bound": 64,
          "last_pass_text": "e2e p95 17.2 s <= 20 s", "first_fail_text": "e2e p95 23 s > 20 s"}


@pytest.mark.parametrize(("changes", "line"), [
    ({}, "capacity: 6 users (6 passed: e2e p95 17.2 s <= 20 s; 7 failed: e2e p95 23 s > 20 s)"),
    ({"value": 64, "last_pass": 64, "first_fail": None, "outcome": "bound"},
     "capacity: >= 64 users (64 passed: e2e p95 17.2 s <= 20 s); the bound (64 users) passed, so capacity is at "
     "least that"),
    ({"value": 0, "last_pass": None, "first_fail": 2, "outcome": "none"},
     "capacity: 0 users (2 failed: e2e p95 23 s > 20 s); even 2 users failed"),
    ({"outcome": "time"}, "capacity: 6 users (6 passed: e2e p95 17.2 s <= 20 s; 7 failed: e2e p95 23 s > 20 s); "
                          "the search's time limit ended it before the answer was narrowed down"),
    ({"unit": "req/s", "value": 2.5, "last_pass": 2.5, "first_fail": 2.75},
     "capacity: 2.5 req/s (2.5 passed: e2e p95 17.2 s <= 20 s; 2.75 failed: e2e p95 23 s > 20 s)"),
])
def test_capacity_line_states_the_answer_and_how_it_ended(changes, line):
    assert capacity_line({**ANSWER, **changes}) == line
