"""One run (and target) of a setting sweep: its setting values and what it measured, as the curve and the
recommendation read them; and how a setting is written (``num_parallel=4``, ``a=1, b=2``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Value = bool | int | float | str  # a swept setting's value, as run.json holds it


@dataclass(frozen=True, slots=True)
class Point:
    """One run and target of the sweep; NaN where the run has no curve. The p95s are at ``top_x``."""

    run: str  # the run's label in the comparison
    setting: dict[str, Value]  # its swept values, e.g. {"num_parallel": 4}
    host: str | None  # None: no curve (or, in a run taken as a whole, several targets)
    model: str | None
    peak_agg_tok_s: float  # the highest aggregate output tok/s of any level
    peak_x: float  # the level where it peaked
    peak_per_req_tok_s: float  # the median per-request tok/s at that level
    solo_tok_s: float  # the median per-request tok/s at the lowest level
    top_x: float  # the highest level the run measured
    top_ttft_p95_s: float
    top_e2e_p95_s: float
    top_slot_wait_p95_s: float
    slo_passed: bool | None  # None when the run had no SLOs
    capacity: float | None  # the capacity search's answer; None when no search ran
    capacity_unit: str | None  # "users" or "req/s"


def is_number(value: Value) -> bool:
    """A finite number (true and false count as 1 and 0)."""
    return isinstance(value, int | float) and math.isfinite(value)


def show(value: Value) -> str:
    """A value as the scenario spells it: 4, 0.5, true, q8_0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def label(setting: Mapping[str, Value]) -> str:
    """``num_parallel=4``; two settings ``num_parallel=4, context_length=8192``."""
    return ", ".join(f"{key}={show(value)}" for key, value in setting.items())


def short(setting: Mapping[str, Value]) -> str:
    """A single setting by its value alone (``8``), several by ``label``."""
    return show(next(iter(setting.values()))) if len(setting) == 1 else label(setting)
