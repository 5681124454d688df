"""Latency percentiles per group and over time, and error rates by class (503s apart)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.metrics import LATENCY_COLUMNS
from analysis.percentiles import label, percentile_table
from analysis.run import Run

GROUPS: tuple[str, ...] = ("workload", "host", "model")
NICE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def measured(run: Run, columns: Sequence[str] | None = None, include_warmup: bool = False) -> pd.DataFrame:
    """The run's records outside warm-up (all of them with ``include_warmup``), only ``columns`` if given:
    copying just the columns a computation needs keeps million-row runs fast."""
    if not run.has_records:
        return pd.DataFrame(columns=list(columns or []))
    records = run.records
    assert records is not None  # has_records
    rows = slice(None) if include_warmup else ~records["warmup"]
    return records.loc[rows, list(dict.fromkeys(columns)) if columns else slice(None)]


def latency_table(
    run: Run, by: Sequence[str] = GROUPS, metrics: Sequence[str] = LATENCY_COLUMNS, include_warmup: bool = False
) -> pd.DataFrame:
    """Exact percentiles of each metric over successful requests, one row per group and metric."""
    records = measured(run, [*by, *metrics, "ok"], include_warmup)
    if records.empty:
        return percentile_table(pd.DataFrame(columns=[*by, *metrics]), by, metrics)
    return percentile_table(records[records["ok"]], by, metrics)


def window_for(span_s: float, points: int = 60) -> float:
    """A round window length giving about ``points`` windows over ``span_s``."""
    return float(next((w for w in NICE_WINDOWS_S if w * points >= span_s), NICE_WINDOWS_S[-1]))


def latency_over_time(
    run: Run, window_s: float | None = None, metrics: Sequence[str] = ("e2e_s", "ttft_s"), q: float = 0.95
) -> pd.DataFrame:
    """Percentile ``q`` of each metric per time window of completion (``t_end``), with request and error
    counts; ``t_s`` is the window's start in seconds from the first request."""
    records = measured(run, ["t_start", "t_end", "ok", *metrics], include_warmup=True)
    if records.empty:
        return pd.DataFrame(columns=["t_s", "window_s", "requests", "errors", *(f"{m}_{label(q)}" for m in metrics)])
    t0 = float(records["t_start"].min())
    window = window_s or window_for(float(records["t_end"].max()) - t0)
    slot = np.floor((records["t_end"] - t0) / window)
    ok = records[records["ok"]]
    table = pd.DataFrame({"requests": records.groupby(slot).size(), "errors": (~records["ok"]).groupby(slot).sum()})
    for metric in metrics:
        table[f"{metric}_{label(q)}"] = ok[metric].groupby(slot[ok.index]).quantile(q)
    table.index.name = "slot"
    table = table.reset_index()
    table.insert(0, "t_s", table.pop("slot") * window)
    table.insert(1, "window_s", window)
    return table


ERROR_CLASSES = ("connect", "timeout", "http_4xx", "http_5xx", "stream_broken", "bad_response", "cancelled")


def error_table(run: Run, by: Sequence[str] = GROUPS, include_warmup: bool = False) -> pd.DataFrame:
    """Requests, error rate, 503 rate apart, and the count of every other error class, per group."""
    records = measured(run, [*by, "ok", "is_503", "error"], include_warmup)
    if records.empty:
        return pd.DataFrame(columns=[*by, "requests", "errors", "error_rate", "n_503", "rate_503"])
    frame = pd.DataFrame({c: records[c] for c in by})
    frame["requests"] = 1
    frame["errors"] = ~records["ok"]
    frame["n_503"] = records["is_503"]
    error = records["error"].astype(object)
    for name in ERROR_CLASSES:
        frame[name] = (error == name) & ~records["is_503"]
    table = frame.groupby(list(by), observed=True).sum().reset_index() if by else frame.sum().to_frame().T
    table["error_rate"] = table["errors"] / table["requests"]
    table["rate_503"] = table["n_503"] / table["requests"]
    columns = [*by, "requests", "errors", "error_rate", "n_503", "rate_503"]
    return table[columns + [c for c in ERROR_CLASSES if table[c].sum() > 0]]

