"""Concurrency of time intervals by a sweep over their sorted endpoints (O(n log n), numpy only).

A set of intervals ``[start, end]`` becomes a step function: ``times`` (sorted endpoints) and ``level``
(how many intervals are open just after each time). Ends sort before starts at equal times, so intervals
that merely touch never count as overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Steps:
    times: np.ndarray  # sorted endpoint times
    level: np.ndarray  # open intervals on [times[i], times[i+1])

    @property
    def durations(self) -> np.ndarray:
        return np.diff(self.times)


def steps(starts: np.ndarray, ends: np.ndarray) -> Steps:
    """The step function of how many of the intervals ``[starts[i], ends[i]]`` are open at each time."""
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts), np.int32), -np.ones(len(ends), np.int32)])
    order = np.lexsort((deltas, times))
    return Steps(times[order], np.cumsum(deltas[order]))


def time_at_least(s: Steps) -> np.ndarray:
    """``out[m]`` = total time with at least ``m`` intervals open (``out[0]`` is the whole span)."""
    if len(s.times) < 2:
        return np.zeros(1)
    at = np.bincount(s.level[:-1], weights=s.durations, minlength=int(s.level.max()) + 1)
    return np.cumsum(at[::-1])[::-1]


def mean_level(s: Steps, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Time-averaged level over each ``[starts[i], ends[i]]`` (NaN for empty intervals)."""
    area = np.concatenate([[0.0], np.cumsum(s.level[:-1] * s.durations)])

    def integral(t: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(s.times, t, side="right") - 1, 0, len(s.times) - 1)
        value: np.ndarray = area[i] + s.level[i] * (t - s.times[i])
        return value

    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    width = ends - starts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, (integral(ends) - integral(starts)) / width, np.nan)


def downsample(s: Steps, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``bins`` points for a chart: the highest level reached in each equal slice of time."""
    if len(s.times) <= bins:
        return s.times, s.level.astype(float)
    edges = np.linspace(s.times[0], s.times[-1], bins + 1)
    spanning = np.clip(np.searchsorted(s.times, edges[:-1], side="right") - 1, 0, None)
    peak = s.level[spanning].astype(float)
    inside = np.clip(np.searchsorted(edges, s.times, side="right") - 1, 0, bins - 1)
    np.maximum.at(peak, inside, s.level.astype(float))
    return edges[:-1], peak
