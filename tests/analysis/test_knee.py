import pandas as pd

from analysis.saturation import is_serial, knee, onset_503


def curve(x, agg, speed, wall, n_503=None, mode="round"):
    return pd.DataFrame({"x": x, "agg_tok_s": agg, "per_req_tok_s": speed, "wall_s": wall, "e2e_p50_s": wall,
                         "mode": mode, "n_503": n_503 or [0] * len(x), "rounds": 3, "requests": x})


# DESIGN.md's M1 tables
FOUR = curve([1, 2, 4, 8], [18.4, 18.5, 33.2, 33.6], [21.7, 9.8, 9.9, 10.0], [5.15, 10.57, 11.36, 22.30])
ONE = curve([1, 8], [21.7, 23.5], [24.6, 24.5], [4.38, 32.04])


def test_knee_is_the_lowest_level_reaching_90_percent_of_peak():
    # 0.9 * 33.6 = 30.24: c1 18.4 and c2 18.5 fall short, c4 33.2 reaches it
    assert knee(FOUR) == 4
    # 0.9 * 23.5 = 21.15 <= 21.7 at c1
    assert knee(ONE) == 1


def test_serial_server():
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
