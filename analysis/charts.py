"""The report's charts: analysis tables in, ``Figure`` blocks (inline SVG) out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from analysis.document import Figure
from analysis.svg import Rule, Series, chart


def _x_scale(x: pd.Series) -> Literal["linear", "log2"]:
    x = x.dropna()
    return "log2" if not x.empty and x.min() > 0 and x.max() / x.min() >= 4 else "linear"


def curve_figures(curves: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """Aggregate tok/s, time and per-request tok/s against concurrency: one line per label (run or target)."""
    if not curves:
        return []
    every_x = pd.concat([c["x"] for c in curves.values()])
    scale = _x_scale(every_x)
    rounds = all((c["mode"] == "round").all() for c in curves.values())
    time_column, time_label = ("wall_s", "wall time per round (s)") if rounds else ("e2e_p50_s", "median e2e (s)")

    def lines(column: str) -> list[Series]:
        return [Series(label, c["x"].tolist(), c[column].tolist()) for label, c in curves.items()]

    return [
        Figure(chart(lines("agg_tok_s"), title="Aggregate output tok/s", x_label="concurrency",
                     y_label="tok/s", x_scale=scale), "sum of output tokens / wall, per level"),
        Figure(chart(lines(time_column), title=time_label.capitalize(), x_label="concurrency", y_label="s",
                     x_scale=scale), "time grows with concurrency once the slots are full"),
        Figure(chart(lines("per_req_tok_s"), title="Per-request tok/s", x_label="concurrency", y_label="tok/s",
                     x_scale=scale), "median output_tokens / server_eval_s"),
    ]


def setting_figure(groups: Mapping[str, pd.DataFrame], setting: str, axis: str) -> Figure:
    """A sweep's peak aggregate tok/s and the per-request tok/s at that peak against the swept ``setting`` (x):
    a pair of lines per group (the other settings' values, or a target; "" when there is one group)."""
    series = []
    for name, group in groups.items():
        prefix = f"{name}: " if name else ""
        x = group["x"].tolist()
        series += [Series(f"{prefix}aggregate", x, group["peak_agg_tok_s"].tolist()),
                   Series(f"{prefix}per request at the peak", x, group["peak_per_req_tok_s"].tolist())]
    every_x = pd.concat([group["x"] for group in groups.values()])
    return Figure(chart(series, title=f"Peak tok/s against {setting}", x_label=axis, y_label="tok/s",
                        x_scale=_x_scale(every_x), width=480, height=280),
                  "each run's peak aggregate output tok/s, and the median per-request tok/s at that level")


def latency_figure(curve: pd.DataFrame, title: str) -> Figure:
    """Latency percentiles and slot wait against concurrency for one target."""
    names = {"ttft_p50_s": "TTFT p50", "ttft_p95_s": "TTFT p95", "e2e_p50_s": "e2e p50", "e2e_p95_s": "e2e p95",
             "slot_wait_p95_s": "slot wait p95"}
    series = [Series(name, curve["x"].tolist(), curve[c].tolist()) for c, name in names.items()
              if curve[c].notna().any()]
    return Figure(chart(series, title=title, x_label="concurrency", y_label="s", x_scale=_x_scale(curve["x"])),
                  "exact percentiles per level, warm-up excluded")


def speed_figure(per_slot: pd.DataFrame, points: tuple[np.ndarray, np.ndarray] | None, title: str) -> Figure:
    """Per-request tok/s against the busy slots during each request, with the median per busy level."""
    series = []
    if points is not None:
        series.append(Series("requests", points[0].tolist(), points[1].tolist(), kind="scatter", color="#9ecae1"))
    series.append(Series("median", per_slot["m"].tolist(), per_slot["per_req_tok_s"].tolist(), color="#1f77b4"))
    series.append(Series("aggregate = m x median", per_slot["m"].tolist(), per_slot["aggregate_tok_s"].tolist(),
                         color="#d62728"))
    return Figure(chart(series, title=title, x_label="busy slots during the request", y_label="tok/s"),
                  "each dot a request: its speed against the mean number of requests in service meanwhile")


def busy_figure(times: np.ndarray, level: np.ndarray, t0: float, slots: int | None, title: str) -> Figure:
    """Requests in service over time, with the inferred slot count marked."""
    rules = [Rule(float(slots), f"{slots} slot{'' if slots == 1 else 's'} inferred")] if slots else []
    series = [Series("in service", (times - t0).tolist(), level.tolist(), kind="step")]
    return Figure(chart(series, title=title, x_label="seconds since the first request", y_label="requests",
                        rules=rules), "server busy intervals swept over time (peak per time slice)")


def over_time_figure(over_time: pd.DataFrame) -> Figure:
    """p95 latency per time window."""
    series = [Series(c.replace("_s_p95", " p95").replace("_", " "), over_time["t_s"].tolist(), over_time[c].tolist())
              for c in over_time.columns if c.endswith("p95") and over_time[c].notna().any()]
    window = over_time["window_s"].iloc[0] if not over_time.empty else 0
    return Figure(chart(series, title=f"p95 per {window:g} s window", x_label="seconds since the first request",
                        y_label="s"), "exact p95 of the requests completing in each window")


def locust_figures(history: pd.DataFrame, users_curve: pd.DataFrame) -> list[Figure]:
    """Locust's own history (requests/s and its bucketed p95 over time) and requests/s against users."""
    figures = []
    if not history.empty:
        t = (history["t"] - history["t"].min()).tolist()
        figures.append(Figure(chart([Series("requests/s", t, history["req_s"].tolist()),
                                     Series("users", t, history["users"].tolist(), kind="step")],
                                    title="Locust: requests/s and users", x_label="s", y_label=""),
                              "Locust's current rate (10 s window)"))
        figures.append(Figure(chart([Series(f"p95 ({history['window'].iloc[0]})", t, history["p95_s"].tolist())],
                                    title="Locust: bucketed p95", x_label="s", y_label="s"),
                              "Locust's bucketed percentile, not exact"))
    if not users_curve.empty:
        req_s = Series("requests/s", users_curve["users"].tolist(), users_curve["req_s"].tolist())
        figures.append(Figure(chart([req_s],
                                    title="Locust: requests/s against users", x_label="users", y_label="requests/s",
                                    x_scale=_x_scale(users_curve["users"])),
                              "median of Locust's current rate once each user count had settled 10 s"))
    return figures


def capacity_figure(curve: pd.DataFrame, slo: str, unit: str, capacity: float | None) -> Figure:
    """The limiting SLO's observed value (with its interval) against the probed level, the threshold as a
    horizontal rule and the capacity found as a vertical one."""
    levels = curve["level"].tolist()
    series = [Series(slo, levels, curve["observed"].tolist()),
              Series("interval", levels * 2, [*curve["low"], *curve["high"]], kind="scatter", color="#7f7f7f")]
    threshold = float(curve["threshold"].iloc[0])
    rules = [Rule(threshold, f"SLO {threshold:g}")]
    if capacity:
        rules.append(Rule(capacity, f"capacity {capacity:g}", axis="x"))
    return Figure(chart(series, title=f"{slo} against {unit}", x_label=unit,
                        y_label="share of requests" if slo == "error_rate" else "s", x_scale=_x_scale(curve["level"]),
                        rules=rules),
                  "the limiting SLO per probed level (a level probed twice: both runs together), with its interval")
