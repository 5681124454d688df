"""Saturation per host and model: the curve across levels, slots, knee, serial server, 503 onset, and how
per-request speed falls as slots fill."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.busy import downsample, mean_level, steps
from analysis.curve import KEYS, by_target, curve_table, solo
from analysis.run import Run
from analysis.slots import (
    Estimate,
    configured_slots,
    fit_estimate,
    metrics_estimate,
    overlap_estimate,
    overlap_levels,
)

KNEE_SHARE = 0.9  # the knee: the lowest level reaching this share of the peak aggregate tok/s
FLAT_GAIN = 1.2  # serial: peak aggregate tok/s at most this multiple of the lowest level's
SAME_SPEED = 0.85  # serial: per-request speed at the top level at least this share of solo speed
PROPORTIONAL = (0.75, 1.33)  # serial: (wall or e2e ratio) / (concurrency ratio) within this band
CHART_POINTS = 600


@dataclass
class Saturation:
    """Everything ``analyze_saturation`` finds; ``targets`` has one row per host and model."""

    curve: pd.DataFrame
    targets: pd.DataFrame
    overlap: pd.DataFrame
    degradation: pd.DataFrame
    busy_series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    speed_points: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def knee(curve: pd.DataFrame) -> float | None:
    """The lowest concurrency whose aggregate tok/s reaches ``KNEE_SHARE`` of the peak."""
    c = curve.dropna(subset=["agg_tok_s", "x"])
    if c.empty:
        return None
    return float(c.loc[c["agg_tok_s"] >= KNEE_SHARE * c["agg_tok_s"].max(), "x"].min())


def is_serial(curve: pd.DataFrame) -> bool | None:
    """Aggregate throughput flat, time growing in proportion to concurrency, per-request speed unchanged:
    requests were queued one at a time, not slowed. ``None`` with fewer than two levels to compare."""
    c = curve.dropna(subset=["agg_tok_s", "x"]).sort_values("x")
    if len(c) < 2 or c["x"].iloc[-1] <= c["x"].iloc[0]:
        return None
    low, high = c.iloc[0], c.iloc[-1]
    flat = c["agg_tok_s"].max() <= FLAT_GAIN * low["agg_tok_s"]
    same_speed = high["per_req_tok_s"] >= SAME_SPEED * low["per_req_tok_s"]
    time = "wall_s" if high["mode"] == "round" else "e2e_p50_s"  # a steady stage's span is its set duration
    growth = (high[time] / low[time]) / (high["x"] / low["x"])
    return bool(flat and same_speed and PROPORTIONAL[0] <= growth <= PROPORTIONAL[1])


def onset_503(curve: pd.DataFrame) -> float | None:
    """The lowest concurrency at which any 503 ("server busy") came back."""
    hit = curve.loc[curve["n_503"] > 0, "x"]
    return float(hit.min()) if not hit.empty else None


def degradation(records: pd.DataFrame, busy: np.ndarray) -> pd.DataFrame:
    """Per-request speed against busy slots: each request's busy level is the time-averaged number of
    requests in service during its own service interval, rounded; aggregate = m * median speed."""
    r = records.assign(m=np.rint(busy)).dropna(subset=["m", "gen_tok_s"])
    grouped = r.groupby("m")["gen_tok_s"]
    table = grouped.agg(requests="size", per_req_tok_s="median").reset_index()
    table["m"] = table["m"].astype(int)
    table["aggregate_tok_s"] = table["m"] * table["per_req_tok_s"]
    table["relative_speed"] = table["per_req_tok_s"] / (table["per_req_tok_s"].iloc[0] if len(table) else np.nan)
    return table


def _timing(records: pd.DataFrame) -> str:
    counts = records["timing"].astype(object).replace("", "none").value_counts()
    return str(counts.idxmax()) if not counts.empty else "none"


def analyze_saturation(run: Run) -> Saturation:
    """Curve, slot estimates, knee, serial flag, 503 onset and speed-vs-busy per host and model."""
    empty = pd.DataFrame()
    if not run.has_records:
        return Saturation(empty, empty, empty, empty)
    records = run.records
    assert records is not None  # has_records
    curve = curve_table(records)
    curves = by_target(curve)
    rows, overlaps, degradations, warnings = [], [], [], []
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    points: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    needed = [*KEYS, "t_start", "t_end", "busy_start", "service_s", "gen_tok_s", "timing", "server_prompt_eval_s"]
    for (host, model), group in by_target(records.loc[records["ok"], needed]).items():
        target_curve = curves.get((host, model), curve.iloc[0:0])
        levels = overlap_levels(group)
        timed = group.dropna(subset=["busy_start"])
        busy_steps = steps(timed["busy_start"].to_numpy(), timed["t_end"].to_numpy())
        busy = mean_level(busy_steps, timed["busy_start"].to_numpy(), timed["t_end"].to_numpy())
        speed = degradation(timed, busy)
        if len(busy_steps.times):
            series[(host, model)] = downsample(busy_steps, CHART_POINTS)
            sample = np.linspace(0, len(busy) - 1, min(len(busy), CHART_POINTS * 2)).astype(int)
            points[(host, model)] = (busy[sample], timed["gen_tok_s"].to_numpy()[sample])
        overlap = overlap_estimate(levels)
        fit = fit_estimate(target_curve)
        metrics, total = metrics_estimate(run.server_metrics, host)
        configured = configured_slots(run.info, host) or total
        best = next((e for e in (overlap, fit, metrics) if e.value is not None), Estimate(None))
        timing = _timing(group)
        warnings += _warnings(host, model, timing, overlap, fit, metrics, configured, best)
        low = solo(target_curve) if not target_curve.empty else None
        peak = target_curve["agg_tok_s"].max() if not target_curve.empty else np.nan
        rows.append(
            {
                "host": host, "model": model, "timing": timing, "slots": best.value,
                "slots_lower_bound": best.lower_bound, "overlap": str(overlap), "fit": str(fit),
                "server_metrics": str(metrics), "configured": configured,
                "agree": overlap.agrees(fit) and overlap.agrees(metrics),
                "knee": knee(target_curve), "serial": is_serial(target_curve), "onset_503": onset_503(target_curve),
                "solo_x": low["x"] if low is not None else np.nan,
                "solo_tok_s": low["per_req_tok_s"] if low is not None else np.nan,
                "solo_agg_tok_s": low["agg_tok_s"] if low is not None else np.nan,
                "peak_agg_tok_s": peak,
                "gain": peak / low["agg_tok_s"] if low is not None and low["agg_tok_s"] > 0 else np.nan,
                "service_s": float(group["service_s"].mean()),
                "prefill_s": float(group["server_prompt_eval_s"].mean()),
                "requests": len(group),
            }
        )
        overlaps.append(levels.assign(host=host, model=model))
        degradations.append(speed.assign(host=host, model=model))
    return Saturation(
        curve=curve,
        targets=pd.DataFrame(rows),
        overlap=_front(overlaps),
        degradation=_front(degradations),
        busy_series=series,
        speed_points=points,
        warnings=warnings,
    )


def _front(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return table[KEYS + [c for c in table.columns if c not in KEYS]]


def _warnings(
    host: str, model: str, timing: str, overlap: Estimate, fit: Estimate, metrics: Estimate,
    configured: int | None, best: Estimate,
) -> list[str]:
    where = f"{model}@{host}"
    out = []
    if timing == "client":
        out.append(f"{where}: no server timers; busy intervals and per-request speed are client-side "
                   "(first token to last), so prefill is missing from them")
    elif timing == "none":
        out.append(f"{where}: neither server timers nor first-token times; slots come from the curve fit only")
    if not overlap.agrees(fit):
        out.append(f"{where}: slot estimators disagree: busy-interval overlap says {overlap}, the throughput/queueing "
                   f"fit across stages says {fit}; trust the overlap when stages were short or few")
    if not overlap.agrees(metrics):
        out.append(f"{where}: the server reported {metrics} busy slots but the busy-interval overlap says {overlap}")
    if configured and best.value is not None and best.value < configured and not best.lower_bound:
        out.append(f"{where}: configured {configured} slots, effective {best.value}")
    return out


def saturation_curve(run: Run) -> pd.DataFrame:
    """The saturation curve: one row per host, model and level (see ``analysis.curve.COLUMNS``)."""
    return curve_table(run.records) if run.has_records else pd.DataFrame()


def effective_slots(run: Run) -> pd.DataFrame:
    """One row per host and model: the three slot estimates, knee, serial flag, 503 onset, gain."""
    return analyze_saturation(run).targets
