"""Replay fidelity (``load: {shape: replay}``): how close to their recorded times the requests went out,
and how much of the trace was not sent: left out when it was read (window, ``max_requests``, bad rows,
requests without sizes, counted in ``run.json``'s ``load.summary``) or not sent by the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.percentiles import PERCENTILES, label
from analysis.run import Run

#: ``run.json`` ``load.summary`` counts, as the report names them.
DROPPED = {
    "outside_window": "outside the window",
    "over_cap": "over max_requests",
    "bad": "bad rows skipped",
    "unsized": "without token counts (failed when recorded)",
}


@dataclass(frozen=True)
class ReplayFidelity:
    """A replay's schedule against what was sent."""

    file: str
    speed: float
    rows: int  # requests in the trace file
    dropped: dict[str, int]  # DROPPED key -> requests left out when the trace was read
    scheduled: int  # requests in the schedule
    sent: int  # of them, sent (recorded with their due time)
    lag_s: dict[str, float]  # n, mean, max and percentiles of t_start - t_scheduled

    @property
    def line(self) -> str:
        ms = {key: f"{self.lag_s[key] * 1000:.1f} ms" for key in ("p50", "p99", "max")}
        lag = f"lag t_start - t_scheduled p50 {ms['p50']}, p99 {ms['p99']}, max {ms['max']}" if self.sent else \
            "no request was sent"
        left = ", ".join(f"{count} {DROPPED[key]}" for key, count in self.dropped.items() if count)
        return (f"replay of {self.file} at speed {self.speed:g}: {self.sent} of {self.scheduled} scheduled requests "
                f"sent ({self.scheduled - self.sent} not sent by the end); {lag}. The trace has {self.rows} requests"
                + (f"; left out when read: {left}." if left else "; none left out."))

    def table(self) -> pd.DataFrame:
        """The lag's distribution, one row."""
        return pd.DataFrame([{"metric": "lag_s (t_start - t_scheduled)", **self.lag_s}])

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "speed": self.speed, "rows": self.rows, "dropped": self.dropped,
                "scheduled": self.scheduled, "sent": self.sent, "not_sent": self.scheduled - self.sent,
                "lag_s": self.lag_s}


def replay_fidelity(run: Run) -> ReplayFidelity | None:
    """The fidelity of a replay run (``None`` for any other run)."""
    load = run.info.get("load") or {}
    summary = load.get("summary") if isinstance(load, dict) and load.get("shape") == "replay" else None
    if not isinstance(summary, dict):
        return None
    records = run.records if run.has_records else None
    due = records[records["t_scheduled"].notna()] if records is not None else pd.DataFrame(columns=["sched_lag_s"])
    lag = due["sched_lag_s"].astype(float)
    stats = {"n": int(lag.count()), "mean": float(lag.mean()),
             **{label(q): float(lag.quantile(q)) for q in PERCENTILES}, "max": float(lag.max())}
    return ReplayFidelity(
        file=str(load.get("file", "")),
        speed=float(load.get("speed", 1.0)),
        rows=int(summary.get("rows", 0)),
        dropped={key: int(summary.get(key, 0)) for key in DROPPED},
        scheduled=int(summary.get("kept", 0)),
        sent=len(due),
        lag_s=stats,
    )
