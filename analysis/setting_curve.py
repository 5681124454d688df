"""A setting sweep read across its runs (``variants: {sweep: {num_parallel: [1, 2, 4, 8]}}``, one run per value):
the setting's curve, one row per run and target, and the setting to use (``analysis.setting_advice``).

The compared runs are a sweep when at least two of them have a non-empty ``swept`` in run.json (``{"num_parallel":
4}``), all with the same settings; other runs (a baseline) stay out of the curve. Every figure is read off the run's
saturation curve (``analysis.curve``): the peak is the level of highest aggregate output tok/s, solo the lowest
level, the top the highest level the run measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from analysis import charts
from analysis.analyze import Analysis
from analysis.curve import by_target, solo
from analysis.document import Block, Figure, Heading, Table, Text
from analysis.setting_advice import Recommendation, recommend
from analysis.setting_point import Point, Value, is_number, show


@dataclass(frozen=True, slots=True)
class SettingCurve:
    """The sweep's rows in setting order and the recommendation drawn from them."""

    keys: tuple[str, ...]  # the swept settings, in the scenario's order
    points: tuple[Point, ...]
    recommendation: Recommendation

    def to_json(self) -> dict[str, Any]:
        """compare.json's ``setting_curve`` (one object per row) and ``recommendation``."""
        return {"setting_curve": [asdict(p) for p in self.points], "recommendation": asdict(self.recommendation)}

    def blocks(self) -> list[Block]:
        """The document's section: heading, recommendation, table and chart."""
        caption = ("per run (setting) and target: peak aggregate output tok/s and the level x where it peaked, the "
                   "median per-request tok/s there and at the lowest level, and p95s at the highest level (top x)")
        return [Heading("The setting's curve"), Text(self.recommendation.line), Table(self.table(), caption),
                self.figure()]

    def table(self) -> pd.DataFrame:
        """One row per run and target, in setting order; SLO and capacity columns only when some run had them."""
        several = len({(p.host, p.model) for p in self.points}) > 1
        slos = any(p.slo_passed is not None for p in self.points)
        searched = any(p.capacity is not None for p in self.points)
        rows = []
        for p in self.points:
            row: dict[str, object] = {"run": p.run, **p.setting}
            if several:
                row["target"] = f"{p.model}@{p.host}" if p.host is not None else None
            row |= {"peak tok/s": p.peak_agg_tok_s, "peak at x": p.peak_x,
                    "per-request tok/s there": p.peak_per_req_tok_s, "solo tok/s": p.solo_tok_s, "top x": p.top_x,
                    "TTFT p95 s": p.top_ttft_p95_s, "e2e p95 s": p.top_e2e_p95_s,
                    "slot wait p95 s": p.top_slot_wait_p95_s}
            if slos:
                row["SLOs met"] = p.slo_passed
            if searched:
                row["capacity"] = f"{p.capacity:g} {p.capacity_unit}" if p.capacity is not None else None
            rows.append(row)
        return pd.DataFrame(rows)

    def figure(self) -> Figure:
        """Peak aggregate and per-request tok/s against the first setting; a pair of lines per value of the other
        settings (and per target). A setting that is not a number is plotted by position, listed on the axis."""
        key = self.keys[0]
        values = [p.setting[key] for p in self.points]
        numeric = all(is_number(v) for v in values)
        distinct = list(dict.fromkeys(values))
        several = len({(p.host, p.model) for p in self.points}) > 1
        groups: dict[str, list[tuple[float, float, float]]] = {}
        for p in self.points:
            x = float(p.setting[key]) if numeric else float(distinct.index(p.setting[key]) + 1)
            name = ", ".join([*(f"{k}={show(v)}" for k, v in p.setting.items() if k != key),
                              *([f"{p.model}@{p.host}"] if several else [])])
            groups.setdefault(name, []).append((x, p.peak_agg_tok_s, p.peak_per_req_tok_s))
        axis = key if numeric else f"{key}: " + ", ".join(f"{i} = {show(v)}" for i, v in enumerate(distinct, 1))
        columns = ["x", "peak_agg_tok_s", "peak_per_req_tok_s"]
        return charts.setting_figure({name: pd.DataFrame(rows, columns=columns) for name, rows in groups.items()},
                                     key, axis)


def setting_curve(labels: Sequence[str], analyses: Sequence[Analysis]) -> SettingCurve | None:
    """The sweep's curve and recommendation; None unless at least two runs were swept, all on the same settings."""
    runs = [(label, a, swept(a)) for label, a in zip(labels, analyses, strict=True)]
    runs = [run for run in runs if run[2]]
    if len(runs) < 2 or len({frozenset(setting) for *_, setting in runs}) > 1:
        return None
    keys = tuple(runs[0][2])
    settings = [{k: setting[k] for k in keys} for *_, setting in runs]
    points = tuple(p for i in _order(settings) for p in _points(runs[i][0], runs[i][1], settings[i]))
    return SettingCurve(keys, points, recommend(points))


def swept(a: Analysis) -> dict[str, Value]:
    """run.json's ``swept``: the run's values of a sweep's settings; empty for other (and older) runs."""
    values = a.run.info.get("swept")
    if not isinstance(values, Mapping):
        return {}
    return {str(k): v if isinstance(v, bool | int | float | str) else str(v) for k, v in values.items()}


def _order(settings: Sequence[Mapping[str, Value]]) -> list[int]:
    """Positions of ``settings`` in setting order: the first setting first, each by value when all its values are
    numbers, else by where the value first appears; ties keep the given order."""
    columns = {key: [s[key] for s in settings] for key in settings[0]}
    numeric = {key: all(is_number(v) for v in column) for key, column in columns.items()}

    def rank(i: int) -> tuple[float, ...]:
        return tuple(float(settings[i][key]) if numeric[key] else float(column.index(settings[i][key]))
                     for key, column in columns.items())

    return sorted(range(len(settings)), key=rank)


def _points(label: str, a: Analysis, setting: dict[str, Value]) -> list[Point]:
    """The run's rows: one per target of its curve, or one without figures when it has no curve."""
    c = a.capacity
    nan = math.nan
    blank = Point(label, setting, None, None, nan, nan, nan, nan, nan, nan, nan, nan,
                  slo_passed=not a.slo_failed if a.slos else None, capacity=None if c is None else c.value,
                  capacity_unit=None if c is None else c.unit)
    curve = a.saturation.curve
    targets = by_target(curve.dropna(subset=["x"])) if not curve.empty else {}
    return [_measured(blank, host, model, target) for (host, model), target in targets.items()] or [blank]


def _measured(blank: Point, host: str, model: str, curve: pd.DataFrame) -> Point:
    """``blank`` with one target's figures read off its curve."""
    low, top = solo(curve), curve.loc[curve["x"].idxmax()]
    rated = curve.dropna(subset=["agg_tok_s"])
    peak = rated.loc[rated["agg_tok_s"].idxmax()] if not rated.empty else pd.Series(dtype=float)
    return replace(
        blank, host=host, model=model, peak_agg_tok_s=float(peak.get("agg_tok_s", math.nan)),
        peak_x=float(peak.get("x", math.nan)), peak_per_req_tok_s=float(peak.get("per_req_tok_s", math.nan)),
        solo_tok_s=float(low["per_req_tok_s"]), top_x=float(top["x"]), top_ttft_p95_s=float(top["ttft_p95_s"]),
        top_e2e_p95_s=float(top["e2e_p95_s"]), top_slot_wait_p95_s=float(top["slot_wait_p95_s"]),
    )
