"""Locust's own CSVs (``--csv PREFIX``): check their columns and turn them into tidy tables.

Locust's percentiles are bucketed when logged (1 ms under 100 ms, 10 ms under 1 s, 100 ms under 10 s,
1 s above) and taken at rank floor(n*p)+1, so they are labelled as Locust's wherever they are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from analysis.errors import InputError
from analysis.run import LocustData
from analysis.schema import parse_locust_entry_name

BUCKETED_NOTE = (
    "Locust's bucketed percentiles: response times rounded when logged (to 1 ms below 100 ms, 10 ms below 1 s, "
    "100 ms below 10 s, 1 s above) and read at rank floor(n*p)+1 of the histogram, not exact"
)
STATS_COLUMNS = (
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
    "Min Response Time", "Max Response Time", "Requests/s",
)
HISTORY_COLUMNS = ("Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s")
FAILURES_COLUMNS = ("Method", "Name", "Error", "Occurrences")
EXCEPTIONS_COLUMNS = ("Count", "Message")
PERCENTILE_COLUMNS = {"50%": "p50", "90%": "p90", "95%": "p95", "99%": "p99", "100%": "max"}


def check_columns(frame: pd.DataFrame, required: Iterable[str], file: str) -> None:
    """Raise ``InputError`` naming the missing columns when ``frame`` lacks any of ``required``."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{file}: missing columns {', '.join(missing)} (not a Locust CSV of this kind?)")


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(float("nan"), frame.index)


def _split_names(names: pd.Series) -> pd.DataFrame:
    parts = [parse_locust_entry_name(str(n)) or ("", "", "") for n in names]
    return pd.DataFrame(parts, columns=["workload", "model", "host"], index=names.index)


def entries(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per Locust entry (and the ``Aggregated`` row): counts, rates and percentiles in seconds."""
    out = pd.DataFrame({"type": stats["Type"].fillna("").astype(str), "name": stats["Name"].astype(str)})
    out = pd.concat([out, _split_names(out["name"])], axis=1)
    out["requests"] = _number(stats, "Request Count")
    out["failures"] = _number(stats, "Failure Count")
    out["failure_share"] = out["failures"] / out["requests"].where(out["requests"] > 0)
    out["req_s"] = _number(stats, "Requests/s")
    out["mean_s"] = _number(stats, "Average Response Time") / 1000
    out["min_s"] = _number(stats, "Min Response Time") / 1000
    for column, name in PERCENTILE_COLUMNS.items():
        out[f"{name}_s"] = _number(stats, column) / 1000
    out["avg_size"] = _number(stats, "Average Content Size")
    # E2E entries carry output tokens as their response length, so rate x mean size is output tok/s.
    out["tok_s"] = (out["req_s"] * out["avg_size"]).where(out["type"] == "E2E")
    return out


def history(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``Aggregated`` rows of the history: time, users, current requests/s and the p50/p95 in seconds.

    Without ``--csv-full-history`` these percentiles are cumulative since the start; with it, over the
    last ~10 s. ``window`` says which.
    """
    full = bool((frame["Name"].astype(str) != "Aggregated").any())
    rows = frame[frame["Name"].astype(str) == "Aggregated"]
    out = pd.DataFrame(
        {
            "t": _number(rows, "Timestamp"),
            "users": _number(rows, "User Count"),
            "req_s": _number(rows, "Requests/s"),
            "fail_s": _number(rows, "Failures/s"),
            "p50_s": _number(rows, "50%") / 1000,
            "p95_s": _number(rows, "95%") / 1000,
        }
    ).reset_index(drop=True)
    out["window"] = "last 10 s" if full else "cumulative"
    return out


def users_curve(hist: pd.DataFrame) -> pd.DataFrame:
    """Requests/s against user count: the median of Locust's current rate over the seconds at each count.

    Locust's current rate trails the user count by its ~10 s window, so each count's first 10 s are left out.
    """
    h = hist.dropna(subset=["users", "req_s"]).sort_values("t")
    since_change = h["t"] - h.groupby((h["users"] != h["users"].shift()).cumsum())["t"].transform("min")
    settled = h[(since_change >= 10) & (h["users"] > 0)]
    grouped = settled.groupby("users")
    curve = grouped.agg(req_s=("req_s", "median"), p95_s=("p95_s", "median"), seconds=("t", "count"))
    return curve.reset_index()


def failures(frame: pd.DataFrame) -> pd.DataFrame:
    """Failures by entry and message, with 503 ("server busy") flagged apart."""
    out = pd.DataFrame(
        {
            "method": frame["Method"].astype(str),
            "name": frame["Name"].astype(str),
            "error": frame["Error"].astype(str),
            "occurrences": _number(frame, "Occurrences"),
        }
    )
    out["is_503"] = out["error"].str.contains(r"\b503\b|server busy", case=False, regex=True)
    return out


@dataclass
class LocustView:
    """Locust's CSVs as tables for the report; empty frames where a file was missing."""

    entries: pd.DataFrame
    history: pd.DataFrame
    users_curve: pd.DataFrame
    failures: pd.DataFrame


def view(data: LocustData) -> LocustView | None:
    """Tidy tables from whatever Locust CSVs a run has; ``None`` without a stats file."""
    if data.stats is None:
        return None
    hist = history(data.history) if data.history is not None else pd.DataFrame()
    return LocustView(
        entries=entries(data.stats),
        history=hist,
        users_curve=users_curve(hist) if not hist.empty else pd.DataFrame(),
        failures=failures(data.failures) if data.failures is not None else pd.DataFrame(),
    )
