import numpy as np
import pytest

from analysis.busy import downsample, mean_level, steps, time_at_least


def test_sweep_counts_overlap_and_touching_intervals_do_not_overlap():
    # [0,2], [1,3], [1,2], [3,4]: level 1 on [0,1), 3 on [1,2), 1 on [2,3), 1 on [3,4) ([1,3] ends as [3,4] starts)
    s = steps(np.array([0, 1, 1, 3.0]), np.array([2, 3, 2, 4.0]))
    at_least = time_at_least(s)
    assert at_least[1] == pytest.approx(4.0)
    assert at_least[2] == pytest.approx(1.0)
    assert at_least[3] == pytest.approx(1.0)
    assert len(at_least) == 4  # never 4 open at once


def test_mean_level_over_each_interval():
    s = steps(np.array([0, 1, 1, 3.0]), np.array([2, 3, 2, 4.0]))
    # over [0,2]: level 1 for 1 s then 3 for 1 s -> 2.0; over [3,4]: 1.0
    assert mean_level(s, np.array([0.0, 3.0]), np.array([2.0, 4.0])) == pytest.approx([2.0, 1.0])


def test_downsample_keeps_the_peak_of_each_slice():
    starts = np.arange(0, 100, 1.0)
    ends = starts + 0.5
    ends[50] = 52.0  # one long interval overlapping two others
    times, level = downsample(steps(starts, ends), 10)
    assert len(times) == 10
    assert level.max() == 2
