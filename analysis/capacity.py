"""A capacity probe's verdict against the SLOs, with its uncertainty stated.

One probe is one load level (a number of closed-loop users, or an arrival rate) held for a while. Its
verdict uses every SLO in force, per workload, over the probe's measured requests (warm-up excluded):

- a latency SLO ``<metric>_p<NN>_s``: the percentile of the successful requests' values (as the report
  computes it) against the threshold, with a bootstrap interval of that percentile (``resamples``
  resamples, seeded: the same records give the same interval); when the interval straddles the
  threshold the check is *too close to call*;
- ``error_rate``: the share of failed requests against the threshold (a count: no interval).

A probe passes when every check passes and fails when any fails; it is *too close* when its verdict
hangs on a check that is too close to call (the search repeats it once). ``limiting`` is the check
nearest to (or furthest beyond) its threshold: the one that decides where capacity ends.

``clearly_failed`` is the early stop: so many requests already broke a latency threshold (or failed)
that, with the same confidence, more than ``1 - q`` of them will: the rest cannot rescue the probe.
``queue_growing`` is the other: latency climbing through the probe without a plateau.

``capacity_line`` states the search's answer (``capacity.json``) in one line, for the load generator's
console and the report alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.slo import Slo

Verdict = Literal["pass", "fail", "close"]

#: Fewest values an SLO is judged on; below it the probe goes on (or, at its end, is too close).
MIN_VALUES = 10


@dataclass(frozen=True, slots=True)
class Check:
    """One SLO of one workload in one probe."""

    workload: str
    slo: str
    threshold: float
    observed: float  # the percentile, or the error rate
    low: float  # the interval around it
    high: float
    n: int

    @property
    def passed(self) -> bool:
        return self.n >= MIN_VALUES and self.observed <= self.threshold

    @property
    def certain(self) -> bool:
        """The interval lies wholly on the verdict's side of the threshold."""
        return self.n >= MIN_VALUES and (self.high <= self.threshold or self.low > self.threshold)

    @property
    def verdict(self) -> Verdict:
        return "close" if not self.certain else "pass" if self.passed else "fail"

    @property
    def margin(self) -> float:
        """``observed / threshold``: above 1 breaks it."""
        return self.observed / self.threshold if self.threshold > 0 else math.inf

    def describe(self) -> str:
        """``e2e p95 17.2 s <= 20 s`` (with the interval when it is too close to call)."""
        name, unit = _name(self.slo)
        if self.n < MIN_VALUES:
            return f"{name}: {self.n} values, too few to judge"
        text = f"{name} {_fmt(self.observed, unit)} {'<=' if self.passed else '>'} {_fmt(self.threshold, unit)}"
        if not self.certain:
            text += f" (interval {_fmt(self.low, unit)}-{_fmt(self.high, unit)}: too close to call)"
        return text


@dataclass(frozen=True, slots=True)
class ProbeVerdict:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> Verdict:
        """``fail`` on any certain failure; else ``close`` when a check is too close to call; else ``pass``."""
        if any(c.verdict == "fail" for c in self.checks):
            return "fail"
        return "close" if any(c.verdict == "close" for c in self.checks) else "pass"

    @property
    def limiting(self) -> Check | None:
        """The deciding check: the furthest beyond its threshold, else the closest to it."""
        return max(self.checks, key=lambda c: (not c.passed, c.margin), default=None)


def judge(records: pd.DataFrame, slo_list: Sequence[Slo], confidence: float = 0.9, resamples: int = 1000,
          seed: int = 0) -> ProbeVerdict:
    """The verdict of one probe on its measured requests (``analysis.metrics.derive``d: ``ok`` and the
    metric columns, plus ``workload``)."""
    return ProbeVerdict(tuple(_check(workload, slo, values, confidence, resamples, seed)
                              for workload, slo, values in _slo_values(records, slo_list)))


def clearly_failed(records: pd.DataFrame, slo_list: Sequence[Slo], confidence: float = 0.9) -> Check | None:
    """A check that has already failed beyond doubt, or None: the share of requests past the threshold has
    a Wilson lower bound above ``1 - q`` (for error_rate: the failed share, above the threshold)."""
    for workload, slo, values in _slo_values(records, slo_list):
        if len(values) < MIN_VALUES:
            continue
        if slo.key == "error_rate":
            beyond, bound = float(values.sum()), slo.threshold
        else:
            beyond, bound = float((values > slo.threshold).sum()), 1.0 - (slo.q or 1.0)
        low, _ = wilson(beyond, len(values), confidence)
        if low > bound:
            return _check(workload, slo, values, confidence, 200, 0)
    return None


def queue_growing(t_start: pd.Series, latency: pd.Series, min_values: int = 3 * MIN_VALUES) -> bool:
    """Latency that keeps rising through the probe: each third of it (by start time) slower than the one
    before, the last more than twice the first. A closed loop's queue settles; an overloaded one does not."""
    if len(latency) < min_values:
        return False
    ordered = latency.to_numpy()[np.argsort(t_start.to_numpy(), kind="stable")]
    thirds = [float(np.median(part)) for part in np.array_split(ordered, 3)]
    return thirds[0] < thirds[1] < thirds[2] and thirds[2] > 2 * thirds[0]


def wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion (two-sided, ``confidence``)."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: np.ndarray, q: float, confidence: float, resamples: int,
                       seed: int) -> tuple[float, float]:
    """The percentile bootstrap interval of the ``q`` quantile (linear interpolation, as the report's)."""
    rng = np.random.default_rng(seed)
    samples = values[rng.integers(0, len(values), size=(resamples, len(values)))]
    estimates = np.quantile(samples, q, axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(estimates, tail)), float(np.quantile(estimates, 1 - tail))


def capacity_line(summary: Mapping[str, Any]) -> str:
    """The answer in one line, from a ``capacity.json``: ``capacity: 6 users (6 passed: e2e p95 17.2 s <= 20 s;
    7 failed: e2e p95 23.0 s > 20 s)``."""
    unit, value, outcome = summary["unit"], summary["value"], summary["outcome"]
    last, first, bound = summary["last_pass"], summary["first_fail"], summary.get("bound")
    parts = []
    if last is not None:
        parts.append(f"{last:g} passed: {summary.get('last_pass_text') or 'no SLO could be judged'}")
    if first is not None:
        parts.append(f"{first:g} failed: {summary.get('first_fail_text') or 'no SLO could be judged'}")
    if outcome == "none" and first is not None:
        ending = f"; even {first:g} {unit} failed"
    elif outcome == "bound" and bound is not None:
        ending = f"; the bound ({bound:g} {unit}) passed, so capacity is at least that"
    elif outcome == "time":
        ending = "; the search's time limit ended it before the answer was narrowed down"
    else:
        ending = ""
    head = f"capacity: {'>= ' if outcome == 'bound' else ''}{value:g} {unit}"
    return head + (f" ({'; '.join(parts)})" if parts else "") + ending


def _slo_values(records: pd.DataFrame, slo_list: Sequence[Slo]) -> list[tuple[str, Slo, pd.Series]]:
    """Per workload and SLO in force, the values it is judged on: a latency SLO's metric over the successful
    requests, or error_rate's per-request failure flags."""
    out = []
    for workload, group in records.groupby("workload", observed=True):
        chosen = {s.key: s for s in slo_list if not s.workload}
        chosen.update({s.key: s for s in slo_list if s.workload == workload})
        for slo in chosen.values():
            if slo.key == "error_rate":
                out.append((str(workload), slo, (~group["ok"]).astype(float)))
            elif slo.column in group:
                out.append((str(workload), slo, group.loc[group["ok"], slo.column].dropna()))
    return out


def _check(workload: str, slo: Slo, values: pd.Series, confidence: float, resamples: int, seed: int) -> Check:
    n = len(values)
    if slo.key == "error_rate":
        observed = low = high = float(values.mean()) if n else math.nan
    elif n:
        array = values.to_numpy(dtype=float)
        observed = float(np.quantile(array, slo.q or 1.0))
        low, high = bootstrap_interval(array, slo.q or 1.0, confidence, resamples, seed)
    else:
        observed = low = high = math.nan
    return Check(workload, slo.key, slo.threshold, observed, low, high, n)


def _name(key: str) -> tuple[str, str]:
    """``e2e_p95_s`` -> (``e2e p95``, ``s``); ``error_rate`` -> (``error rate``, ``%``)."""
    if key == "error_rate":
        return "error rate", "%"
    metric, _, rest = key.rpartition("_p")
    return f"{metric.replace('_', ' ')} p{rest.removesuffix('_s')}", "s"


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value * 100:.1f}%" if unit == "%" else f"{value:.3g} s"
