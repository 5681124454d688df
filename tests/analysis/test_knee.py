"""Knee, serial server and 503 onset (``analysis.saturation``) on saturation curves.

FOUR and ONE are DESIGN.md's Apple M1 tables: the measurements the rules (knee at 90 % of the peak; serial when
the aggregate stays within 1.2x, per-request speed within 0.85x and time grows as concurrency, 0.75-1.33x) were
written to tell apart, and the tables the emulator's m1 preset is fitted to. The tests on them check the rules
against the data they were made for. Each rule is also tested on made-up curves on either side of its
thresholds, with the expected answer worked out by hand in a comment.
"""

import pandas as pd

from analysis.saturation import is_serial, knee, onset_503


def curve(x, agg, speed, wall, n_503=None, mode="round", e2e=None):
    return pd.DataFrame({"x": x, "agg_tok_s": agg, "per_req_tok_s": speed, "wall_s": wall,
                         "e2e_p50_s": wall if e2e is None else e2e, "mode": mode, "n_503": n_503 or [0] * len(x),
                         "rounds": 3, "requests": x})  # fmt: skip


# DESIGN.md's M1 tables
FOUR = curve([1, 2, 4, 8], [18.4, 18.5, 33.2, 33.6], [21.7, 9.8, 9.9, 10.0], [5.15, 10.57, 11.36, 22.30])
ONE = curve([1, 8], [21.7, 23.5], [24.6, 24.5], [4.38, 32.04])


def test_knee_is_the_lowest_level_reaching_90_percent_of_peak():
    """On the M1 tables the rule was written for."""
    # 0.9 * 33.6 = 30.24: c1 18.4 and c2 18.5 fall short, c4 33.2 reaches it
    assert knee(FOUR) == 4
    # 0.9 * 23.5 = 21.15 <= 21.7 at c1
    assert knee(ONE) == 1


def test_serial_server():
    """On the M1 tables the rule was written for."""
    # ONE: peak 23.5 <= 1.2 * 21.7 = 26.0 (flat); speed 24.5 >= 0.85 * 24.6; wall ratio 32.04/4.38 = 7.32 over
    # concurrency ratio 8 -> 0.91 in [0.75, 1.33]
    assert is_serial(ONE) is True
    # FOUR: peak 33.6 > 1.2 * 18.4 = 22.1 -> not flat
    assert is_serial(FOUR) is False
    # c2 alone looks flat, but per-request speed halved (9.8 < 0.85 * 21.7): slowed, not queued
    assert is_serial(FOUR.iloc[:2]) is False
    assert is_serial(ONE.iloc[:1]) is None


def test_503_onset():
    c = curve([1, 2, 4, 8], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], n_503=[0, 0, 3, 9])
    assert onset_503(c) == 4
    assert onset_503(FOUR) is None


def test_knee_on_either_side_of_90_percent():
    # peak 30 at c4: 0.9 x 30 = 27; c2 at 27.1 reaches it, at 26.9 it does not
    assert knee(curve([1, 2, 4], [10, 27.1, 30], [1] * 3, [1] * 3)) == 2
    assert knee(curve([1, 2, 4], [10, 26.9, 30], [1] * 3, [1] * 3)) == 4
    # the peak need not be the top level: peak 40 at c2, 0.9 x 40 = 36 > 30 at c4
    assert knee(curve([1, 2, 4], [10, 40, 30], [1] * 3, [1] * 3)) == 2


def test_serial_on_either_side_of_each_threshold():
    # c1 -> c4 on one slot: aggregate 20 -> 23.9 (<= 1.2 x 20 = 24), per request 20 -> 17.1 (>= 0.85 x 20 = 17),
    # round wall 5 -> 20 s: (20 / 5) / (4 / 1) = 1.0, within 0.75-1.33
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], [5, 20])) is True
    assert is_serial(curve([1, 4], [20, 24.1], [20, 17.1], [5, 20])) is False  # 24.1 > 24: the slots added throughput
    assert is_serial(curve([1, 4], [20, 23.9], [20, 16.9], [5, 20])) is False  # 16.9 < 17: slowed, not queued
    # wall 15.2 s: (15.2 / 5) / 4 = 0.76 >= 0.75; 14.8 s: 0.74 < 0.75; 26.4 s: 1.32 <= 1.33; 26.8 s: 1.34 > 1.33
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], [5, 15.2])) is True
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], [5, 14.8])) is False
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], [5, 26.4])) is True
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], [5, 26.8])) is False


def test_serial_steady_stages_compare_the_median_e2e_not_the_set_duration():
    # steady stages of 60 s each: their span says nothing; median e2e 5 -> 20 s is (20 / 5) / 4 = 1.0
    steady = {"mode": "steady", "wall": [60, 60]}
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], e2e=[5, 20], **steady)) is True
    assert is_serial(curve([1, 4], [20, 23.9], [20, 17.1], e2e=[5, 5], **steady)) is False  # 0.25: not queued
