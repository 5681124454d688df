import pandas as pd
import pytest

from analysis.percentiles import label, percentile_table


def test_linear_interpolation_between_closest_ranks():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 10.0]})
    table = percentile_table(frame, [], ["x"])
    row = table.iloc[0]
    # sorted 1,2,3,4,10; h = (n-1)*q = 4q
    # p50: h=2 -> 3.0
    # p90: h=3.6 -> 4 + 0.6*(10-4) = 7.6
    # p95: h=3.8 -> 4 + 0.8*6 = 8.8
    # p99: h=3.96 -> 4 + 0.96*6 = 9.76
    assert row["n"] == 5
    assert row["mean"] == pytest.approx(4.0)
    assert row["p50"] == pytest.approx(3.0)
    assert row["p90"] == pytest.approx(7.6)
    assert row["p95"] == pytest.approx(8.8)
    assert row["p99"] == pytest.approx(9.76)


def test_groups_and_missing_values_counted_per_metric():
    frame = pd.DataFrame({"g": ["a", "a", "b"], "x": [1.0, 3.0, 5.0], "y": [None, 2.0, None]})
    table = percentile_table(frame, ["g"], ["x", "y"]).set_index(["g", "metric"])
    # group a: x = 1, 3 -> p50 = 2; y has one value (2.0), so every percentile is 2
    assert table.loc[("a", "x"), "p50"] == pytest.approx(2.0)
    assert table.loc[("a", "y"), "n"] == 1
    assert table.loc[("a", "y"), "p99"] == pytest.approx(2.0)
    # group b has no y at all: no row rather than a row of NaN
    assert ("b", "y") not in table.index


def test_label():
    assert [label(q) for q in (0.5, 0.95, 0.999)] == ["p50", "p95", "p99.9"]
