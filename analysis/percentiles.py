"""Exact percentiles from per-request values, by one stated method."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

PERCENTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
METHOD = (
    "exact percentiles from every request's own value, linear interpolation between closest ranks "
    "(numpy/pandas 'linear', Hyndman-Fan type 7): p = x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)]), "
    "h = (n - 1) * q over the sorted values"
)


def label(q: float) -> str:
    """``0.95`` -> ``"p95"``."""
    return f"p{q * 100:g}"


def percentile_table(
    frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str], qs: Sequence[float] = PERCENTILES
) -> pd.DataFrame:
    """One row per group of ``by`` (all rows when empty) and metric: ``n``, ``mean`` and one column per
    percentile. Missing values are left out of each metric's own count."""
    rows = []
    for column in columns:
        values = frame[list(by) + [column]].dropna(subset=[column])
        if values.empty:
            continue
        if by:
            grouped = values.groupby(list(by), observed=True, sort=True)[column]
            stats = grouped.agg(["count", "mean"])
            quantiles = grouped.quantile(list(qs)).unstack()
        else:
            series = values[column]
            stats = pd.DataFrame({"count": [series.count()], "mean": [series.mean()]})
            quantiles = pd.DataFrame([series.quantile(list(qs)).to_numpy()], columns=list(qs))
        quantiles.columns = [label(q) for q in qs]
        table = pd.concat([stats, quantiles], axis=1).rename(columns={"count": "n"})
        table.insert(0, "metric", column)
        rows.append(table.reset_index() if by else table)
    if not rows:
        return pd.DataFrame(columns=[*by, "metric", "n", "mean", *(label(q) for q in qs)])
    return pd.concat(rows, ignore_index=True)[[*by, "metric", "n", "mean", *(label(q) for q in qs)]]
