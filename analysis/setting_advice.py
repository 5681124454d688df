"""The setting to use from a sweep's runs, with the reason in one sentence. The first rule that applies decides:

1. capacity: every run searched for its capacity: the highest capacity; within a user or ``CLOSE`` of it, the
   smaller setting.
2. slo: the runs had SLOs: among the runs that met them, the smallest setting within ``CLOSE`` of their best peak
   aggregate tok/s. None met them: no recommendation, and the setting with the lowest p95 e2e at its top level.
3. throughput: the smallest setting within ``CLOSE`` of the best peak aggregate tok/s.

"Smaller" is earlier in setting order (``analysis.setting_curve``). A run with several targets is judged as a
whole (``whole``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from analysis.setting_point import Point, Value, is_number, label, short

#: Within this share of the best (peak aggregate tok/s, or capacity) a setting counts as good as the best, and the
#: smallest such setting wins: every parallel slot costs KV-cache memory (Ollama allocates context x slots) whether
#: or not it adds throughput, and a few per cent is within a run's noise.
CLOSE: Final = 0.05
#: Capacities in users this close to the best count as good as the best too (when wider than ``CLOSE`` of it).
CLOSE_USERS: Final = 1.0
#: Settings the KV cache grows in proportion to: Ollama's context x parallel slots, llama.cpp's slots x ctx per slot.
KV_CACHE_SETTINGS: Final = frozenset({"num_parallel", "context_length", "slots", "ctx_per_slot"})
#: Settings that count parallel slots: a run whose load never reached that many requests never filled them.
SLOT_SETTINGS: Final = frozenset({"num_parallel", "slots"})

Rule = Literal["capacity", "slo", "throughput", "none"]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The setting to use (None when none can be recommended), the sentence saying why, and the rule it came from."""

    setting: dict[str, Value] | None
    line: str
    rule: Rule


def recommend(points: Sequence[Point]) -> Recommendation:
    """The recommendation for a sweep's points (in setting order) by the first rule that applies."""
    runs = [whole([p for p in points if p.run == run]) for run in dict.fromkeys(p.run for p in points)]
    if all(p.capacity is not None for p in runs) and len({p.capacity_unit for p in runs}) == 1:
        return _by_capacity(runs)
    measured = [p for p in runs if math.isfinite(p.peak_agg_tok_s)]
    if not measured:
        return Recommendation(None, "no run of the sweep measured a curve: no setting to recommend", "none")
    advice = _by_slo(runs, measured) if any(p.slo_passed is not None for p in runs) else _by_throughput(measured)
    return replace(advice, line=advice.line + _unfilled(measured))


def _unfilled(runs: Sequence[Point]) -> str:
    """``; the load never exceeded 4 requests, so num_parallel=8 was not filled: ...`` when a slot count swept is
    above the highest load level its run measured (its throughput there says nothing of what it can give)."""
    unfilled = [p for p in runs for key in SLOT_SETTINGS & p.setting.keys()
                if is_number(p.setting[key]) and math.isfinite(p.top_x) and float(p.setting[key]) > p.top_x]
    if not unfilled:
        return ""
    top = max(p.top_x for p in unfilled)
    return (f"; the load never exceeded {top:g} requests at once, so {_join([label(p.setting) for p in unfilled])} "
            "never had every slot busy: add load levels at least that high to judge them")


def whole(targets: Sequence[Point]) -> Point:
    """A run's points as one: its only target, or several targets' peaks summed (each at its own best level) with
    the slowest target's per-request speeds and the worst target's p95s at its top level (host and model None)."""
    if len(targets) == 1:
        return targets[0]
    slowest = min(targets, key=lambda p: _finite_or(p.peak_per_req_tok_s, math.inf))
    worst = max(targets, key=lambda p: _finite_or(p.top_e2e_p95_s, -math.inf))
    peaks = [p.peak_agg_tok_s for p in targets if math.isfinite(p.peak_agg_tok_s)]
    return replace(slowest, host=None, model=None, peak_agg_tok_s=math.fsum(peaks) if peaks else math.nan,
                   peak_x=math.nan, top_x=worst.top_x, top_ttft_p95_s=worst.top_ttft_p95_s,
                   top_e2e_p95_s=worst.top_e2e_p95_s, top_slot_wait_p95_s=worst.top_slot_wait_p95_s)


def _by_capacity(runs: Sequence[Point]) -> Recommendation:
    unit = runs[0].capacity_unit
    best = max(runs, key=_capacity)
    tolerance = max(CLOSE * _capacity(best), CLOSE_USERS if unit == "users" else 0.0)
    pick = next(p for p in runs if _capacity(best) - _capacity(p) <= tolerance)
    listed = ", ".join(f"{_capacity(p):g} ({label(p.setting)})" for p in runs)
    if _capacity(pick) == _capacity(best):
        why = "the highest"
    else:
        within = f"{CLOSE_USERS:g} user or {_percent(CLOSE)}" if unit == "users" else _percent(CLOSE)
        why = f"within {within} of the highest ({_capacity(best):g} at {label(best.setting)}{_memory(pick, best)})"
    return Recommendation(pick.setting, f"use {label(pick.setting)}: capacity {_capacity(pick):g} {unit}, {why}; "
                                        f"capacities {listed}", "capacity")


def _by_slo(runs: Sequence[Point], measured: Sequence[Point]) -> Recommendation:
    met = [p for p in measured if p.slo_passed]
    missed = [label(p.setting) for p in runs if p.slo_passed is False]
    if not met:
        timed = [p for p in runs if math.isfinite(p.top_e2e_p95_s)]
        if not timed:
            return Recommendation(None, "no setting met the SLOs", "none")
        closest = min(timed, key=lambda p: p.top_e2e_p95_s)
        return Recommendation(None, f"no setting met the SLOs; {label(closest.setting)} came closest: p95 e2e "
                                    f"{closest.top_e2e_p95_s:.3g} s at its top level ({closest.top_x:g})", "none")
    pick, best = _smallest_close(met)
    why = ("the best of the settings that met them" if pick is best else
           f"within {_percent(CLOSE)} of the best that met them ({best.peak_agg_tok_s:.1f} at {label(best.setting)})")
    line = f"use {label(pick.setting)}: it met the SLOs with peak {pick.peak_agg_tok_s:.1f} tok/s aggregate, {why}"
    return Recommendation(pick.setting, line + (f"; {_join(missed)} missed them" if missed else ""), "slo")


def _by_throughput(measured: Sequence[Point]) -> Recommendation:
    pick, _ = _smallest_close(measured)
    i = next(k for k, p in enumerate(measured) if p is pick)
    first = measured[0]
    if i == 0:
        gain = "the smallest setting swept"
    elif first.peak_agg_tok_s > 0:
        gain = f"x{pick.peak_agg_tok_s / first.peak_agg_tok_s:.2f} over {label(first.setting)}"
    else:
        gain = f"against nothing at {label(first.setting)}"
    if i + 1 == len(measured):
        step = "it is the largest setting swept, so a larger one may add more"
    else:
        after = measured[i + 1]
        step = f"{short(after.setting)} adds {_change(pick.peak_agg_tok_s, after.peak_agg_tok_s)}{_memory(pick, after)}"
    speed = (f"each request runs at {pick.peak_per_req_tok_s:.0f} tok/s there against {pick.solo_tok_s:.0f} alone"
             + (" on its slowest target" if pick.host is None else ""))
    line = f"use {label(pick.setting)}: peak {pick.peak_agg_tok_s:.1f} tok/s aggregate ({gain}); {step}; {speed}"
    return Recommendation(pick.setting, line, "throughput")


def _smallest_close(points: Sequence[Point]) -> tuple[Point, Point]:
    """(the first point within ``CLOSE`` of the best peak aggregate tok/s, the best)."""
    best = max(points, key=lambda p: p.peak_agg_tok_s)
    return next(p for p in points if p.peak_agg_tok_s >= (1 - CLOSE) * best.peak_agg_tok_s), best


def _memory(small: Point, large: Point) -> str:
    """`` for twice the KV-cache memory``: the KV cache of ``large`` against ``small``'s, from the settings it grows
    with; empty when no such setting was swept."""
    ratio = 1.0
    keys = [k for k in small.setting if k in KV_CACHE_SETTINGS and is_number(small.setting[k])
            and is_number(large.setting[k]) and float(small.setting[k]) > 0]
    if not keys:
        return ""
    for key in keys:
        ratio *= float(large.setting[key]) / float(small.setting[key])
    words = {1.0: "the same", 2.0: "twice", 0.5: "half"}
    return f" for {words.get(ratio, f'x{ratio:.3g}')} the KV-cache memory"


def _change(base: float, other: float) -> str:
    """``+2 %``: ``other`` over ``base``."""
    return f"{(other / base - 1) * 100:+.0f} %" if base > 0 else "from nothing"


def _percent(share: float) -> str:
    return f"{share * 100:g} %"


def _capacity(p: Point) -> float:
    assert p.capacity is not None  # capacity searched in every run
    return p.capacity


def _finite_or(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def _join(labels: Sequence[str]) -> str:
    """Settings in a list: commas, or semicolons when a setting holds commas itself."""
    return ("; " if any(", " in text for text in labels) else ", ").join(labels)
