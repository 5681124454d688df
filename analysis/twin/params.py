"""The twin's parameters, one estimator each, every one with its source requests, spread and residual.

A parameter the runs cannot determine carries the reason instead of a value; the preset file leaves it
out so that the base preset fills it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from analysis.prompt_cache import CACHE_HIT_FACTOR, evaluated_alone, inferred_hits
from analysis.twin.decode import HALF, succeeded
from analysis.twin.slowdown import Point, RunSpeeds

#: A server load timer above this is a real model load; a loaded runner is handed over in a few ms
#: (the same floor as ``analysis.coldstart``).
LOAD_FLOOR_S: Final = 0.5
#: Percentiles of the lengths of outputs that stopped by themselves that bound the natural output range.
OUTPUT_PERCENTILES: Final = (5.0, 95.0)
#: The sweep that measures the parallel penalty, for the reason given when it cannot be fitted.
PENALTY_SWEEP: Final = "{sweep: {num_parallel: [1, 4]}}"


@dataclass(frozen=True, slots=True)
class Spread:
    kind: str  # what the bounds are, e.g. "p25-p75 of per-request speeds"
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Parameter:
    """One fitted preset field, or why it could not be fitted (``value is None``)."""

    name: str
    value: float | None
    unit: str
    method: str = ""  # how the value was computed, one line
    runs: tuple[str, ...] = ()
    requests: int = 0
    spread: Spread | None = None
    residual: float | None = None
    residual_kind: str = ""  # what ``residual`` measures
    why: str = ""  # why undetermined
    note: str = ""

    @property
    def determined(self) -> bool:
        return self.value is not None


def undetermined(name: str, unit: str, why: str) -> Parameter:
    return Parameter(name, None, unit, why=why)


def _quartiles(values: Sequence[float] | np.ndarray | pd.Series, what: str) -> Spread:
    low, high = np.percentile(np.asarray(values, dtype=float), [25, 75])
    return Spread(f"p25-p75 of {what}", float(low), float(high))


def _relative_mad(values: Sequence[float] | np.ndarray | pd.Series, center: float) -> float:
    """Median absolute deviation from ``center``, as a share of it: the residual of a median."""
    return float(np.median(np.abs(np.asarray(values, dtype=float) - center)) / center)


def _solo_by_slots(runs: Sequence[RunSpeeds]) -> dict[int, list[RunSpeeds]]:
    """Runs with a known slot count and requests decoded alone, by slot count."""
    out: dict[int, list[RunSpeeds]] = {}
    for run in runs:
        if run.slots is not None and run.solo is not None:
            out.setdefault(run.slots, []).append(run)
    return dict(sorted(out.items()))


def _median_solo(runs: Sequence[RunSpeeds]) -> float:
    return float(np.median([run.solo for run in runs if run.solo is not None]))


def parallel_penalty(runs: Sequence[RunSpeeds]) -> Parameter:
    """From ``r(1)`` at different slot counts P: ``solo(P) = solo_tps / (1 + penalty * (P - 1))``.

    With a 1-slot run, least squares of ``r1(1)/r1(P) - 1 = penalty * (P - 1)`` over P > 1; without, the line
    ``1/r1(P) = a + s*(P - 1)`` and ``penalty = s / a``. ``r1(P)`` is the median over the runs with P slots.
    """
    name, unit = "parallel_penalty", ""
    by_slots = _solo_by_slots(runs)
    if not by_slots:
        return undetermined(name, unit, "run.json does not say how many slots the server had (an external "
                                        "server), or no request decoded alone")
    if len(by_slots) == 1:
        (slots,) = by_slots
        return undetermined(name, unit, f"every run had {slots} slot(s) configured: the penalty needs runs with "
                                        f"different slot counts (a sweep: {PENALTY_SWEEP})")
    r1 = {p: _median_solo(group) for p, group in by_slots.items()}
    used = [run for group in by_slots.values() for run in group]
    x = np.array([p - 1 for p in r1], dtype=float)
    speeds = np.array(list(r1.values()))
    if 1 in r1:
        solo = r1[1]
        y = solo / speeds - 1
        value = float(np.sum(x * y) / np.sum(x * x))
        each = y[x > 0] / x[x > 0]
        method = "least squares of r1(1)/r1(P) - 1 = penalty*(P-1), r1 = median speed at batch 1"
        spread = Spread("min-max of (r1(1)/r1(P) - 1)/(P - 1) per P", float(each.min()), float(each.max()))
    else:
        slope, intercept = np.polyfit(x, 1 / speeds, 1)
        if intercept <= 0:
            return undetermined(name, unit, "the speeds at batch 1 fall too steeply with slots to fit a positive "
                                            "solo speed")
        solo, value = 1 / float(intercept), float(slope / intercept)
        method = "least squares of 1/r1(P) = (1 + penalty*(P-1))/solo_tps, r1 = median speed at batch 1"
        spread = None
    note = ""
    if value < 0:
        note = f"fitted {value:.4g} (more slots measured faster: noise) and set to 0"
        value = 0.0
    predicted = solo / (1 + value * x)
    return Parameter(
        name, value, unit, method, tuple(run.name for run in used), sum(len(run.at(1)) for run in used), spread,
        math.sqrt(float(np.mean((predicted - speeds) ** 2))), "rms of r1(P) predicted - measured, tok/s", note=note,
    )


def solo_tps(runs: Sequence[RunSpeeds], penalty: Parameter) -> Parameter:
    """``r(1)`` of the 1-slot runs; else of the fewest slots P, times ``1 + penalty*(P-1)`` when known."""
    name, unit = "solo_tps", "tok/s"
    by_slots = _solo_by_slots(runs)
    if by_slots:
        slots, used = next(iter(by_slots.items()))
    else:
        slots, used = None, [run for run in runs if run.solo is not None]
    if not used:
        return undetermined(name, unit, "no request decoded alone (batch 1)")
    r1 = _median_solo(used)
    speeds = pd.concat([run.at(1) for run in used])
    value, note = r1, ""
    if slots == 1:
        method = "median over the 1-slot runs of r(1), the median speed of requests decoded alone"
    elif slots is None:
        method = "median r(1) of runs whose slot count run.json does not give: not corrected for slots"
        note = "measured with an unknown slot count; the emulator applies the base's parallel_penalty on top"
    elif penalty.value is not None:
        value = r1 * (1 + penalty.value * (slots - 1))
        method = f"r(1) with {slots} slots (no 1-slot run) x (1 + parallel_penalty*({slots}-1))"
    else:
        method = f"r(1) with {slots} slots configured (no 1-slot run), not corrected: parallel_penalty undetermined"
        note = f"this is the solo speed with {slots} slots; the emulator applies the base's parallel_penalty on top"
    return Parameter(name, value, unit, method, tuple(run.name for run in used), len(speeds),
                     _quartiles(speeds, "per-request speeds at batch 1"), _relative_mad(speeds, r1),
                     "median absolute deviation / median", note=note)


def contention(points: Sequence[Point], linear_c: float, linear_rms: float, runs: Sequence[RunSpeeds]) -> Parameter:
    """The linear form's ``c`` (``forms.fit_forms``), which the emulator applies beyond the decode table."""
    name = "contention"
    used = [run for run in runs if any(run.name in p.runs for p in points)]
    each = [(p.f - 1) / (p.b - 1) for p in points]
    note = ""
    if linear_c < 0:
        note, linear_c = f"fitted {linear_c:.4g} and set to 0", 0.0
    clamped = [p.b for p in points if p.clamped]
    if clamped:
        note = "; ".join(filter(None, [note, "f(b) came out below 1 at b = " + ", ".join(map(str, clamped))
                                       + " (faster in company: noise) and was set to 1"]))
    return Parameter(
        name, linear_c, "", "least squares of f(b) = 1 + c*(b-1) over measured b = "
        + ", ".join(str(p.b) for p in points) + ", f(b) = r(1)/r(b) per run, median over runs",
        tuple(run.name for run in used), sum(p.requests for p in points) + sum(len(run.at(1)) for run in used),
        Spread("min-max of (f(b) - 1)/(b - 1) per measured b", min(each), max(each)), linear_rms,
        "rms of f(b) predicted - measured", note=note,
    )


def prefill_tps(records: pd.DataFrame) -> Parameter:
    """Median of ``prompt_tokens / server_prompt_eval_s`` over prompts evaluated alone (``evaluated_alone``; all,
    when none was) without prompt-cache hits (``analysis.prompt_cache``).

    ``records``: the target's records of every run, with a ``run`` column."""
    name, unit = "prefill_tps", "tok/s"
    r = records[succeeded(records) & (records["prompt_tokens"] > 0) & (records["server_prompt_eval_s"] > 0)]
    if r.empty:
        return undetermined(name, unit, "no request reported a prompt evaluation time (no server timers)")
    reported = r["cached_tokens"] > 0
    alone = evaluated_alone(r, ("run",))
    crowded = ~reported & ~alone if (~reported & alone).any() else pd.Series(False, index=r.index)
    rate = (r["prompt_tokens"] / r["server_prompt_eval_s"])[~reported & ~crowded]
    if rate.empty:
        return undetermined(name, unit, "every prompt was a prompt-cache hit (cached_tokens > 0)")
    unreported = r["cached_tokens"][rate.index].isna() & inferred_hits(rate, rate)
    rate = rate[~unreported]
    value = float(rate.median())
    excluded = [f"{int(reported.sum())} reported cache hits (cached_tokens > 0)"] if reported.any() else []
    if crowded.any():
        excluded.append(f"{int(crowded.sum())} evaluated beside other requests (their timers hold the others' work)")
    if unreported.any():
        excluded.append(f"{int(unreported.sum())} evaluated > {CACHE_HIT_FACTOR:g}x the median rate of the others "
                        "(cache hits Ollama does not report)")
    notes = ["excluded " + ", ".join(excluded)] if excluded else []
    if not alone.any():
        notes.append("no prompt was evaluated alone: the rates include other requests' work in the same steps")
    how = "prompts evaluated alone" if alone.any() else "requests"
    return Parameter(name, value, unit, f"median of prompt_tokens / server_prompt_eval_s over {how} without "
                     "prompt-cache hits", _run_names(r.loc[rate.index]), len(rate),
                     _quartiles(rate, "per-request rates"), _relative_mad(rate, value),
                     "median absolute deviation / median", note="; ".join(notes))


def load_s(records: pd.DataFrame, preflight_s: float) -> Parameter:
    """Median of the server's load timers above ``LOAD_FLOOR_S`` (Ollama ``load_duration``), less the emulator's
    pre-flight ``preflight_s`` (the base preset's ``fit_s``): the emulator's ``load_duration`` is ``fit_s + load_s``."""
    name, unit = "load_s", "s"
    timed = records["server_load_s"].dropna()
    if timed.empty:
        return undetermined(name, unit, "the server reports no load time (llama.cpp has no load timer)")
    loads = timed[timed > LOAD_FLOOR_S]
    if loads.empty:
        return undetermined(name, unit, "the runs never loaded the model: it was loaded before they started")
    median = float(loads.median())
    note = "Ollama's load_duration also holds any wait in the scheduler's queue"
    if median < preflight_s:
        note += f"; the median {median:.4g} s is below the pre-flight and was set to 0"
    return Parameter(name, max(0.0, median - preflight_s), unit,
                     f"median of server_load_s above {LOAD_FLOOR_S:g} s (a real load) minus the base's fit_s "
                     f"({preflight_s:g} s), which the emulator's load_duration holds too",
                     _run_names(records.loc[loads.index]), len(loads), _quartiles(loads, "load times"),
                     _relative_mad(loads, median), "median absolute deviation / median", note=note)


def output_range(records: pd.DataFrame) -> tuple[Parameter, Parameter]:
    """``min_output`` and ``max_output``: percentiles of the lengths of outputs that stopped by themselves."""
    units = "tokens"
    ok = records[succeeded(records) & (records["output_tokens"] > 0)]
    reasons = ok["done_reason"].astype("string").fillna("")
    stopped = ok.loc[reasons == "stop", "output_tokens"].astype(float)
    if stopped.empty:
        why = ("the server did not say why generation stopped (no done_reason)" if (reasons == "").all()
               else "no request stopped by itself (every one hit num_predict): the natural length is unknown")
        return undetermined("min_output", units, why), undetermined("max_output", units, why)
    low, high = (float(v) for v in np.percentile(stopped, OUTPUT_PERCENTILES))
    spread = Spread("min-max of the stopped lengths", float(stopped.min()), float(stopped.max()))
    runs = _run_names(ok.loc[stopped.index])

    def make(name: str, percentile: float, value: float) -> Parameter:
        return Parameter(name, float(math.floor(value + HALF)), units,
                         f"p{percentile:g} of output_tokens of requests with done_reason stop", runs, len(stopped),
                         spread)

    return make("min_output", OUTPUT_PERCENTILES[0], low), make("max_output", OUTPUT_PERCENTILES[1], high)


def _run_names(records: pd.DataFrame) -> tuple[str, ...]:
    return tuple(dict.fromkeys(records["run"].astype(str)))
