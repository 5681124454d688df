"""``summary.json``: the analysis as plain JSON (NaN becomes null)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.analyze import Analysis
from analysis.locust_csv import BUCKETED_NOTE
from analysis.metrics import METRICS
from analysis.percentiles import METHOD

MAX_ROWS = 500  # long tables (cold starts, over time) are cut to keep the file readable


def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars to Python, NaN and infinities to None, tables to lists of rows."""
    if isinstance(value, pd.DataFrame):
        return [plain(row) for row in value.head(MAX_ROWS).to_dict("records")]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def summary(a: Analysis) -> dict[str, Any]:
    """The machine-readable summary of one run."""
    run = a.run
    records = run.records if run.has_records else None
    sat = a.saturation
    out: dict[str, Any] = {
        "run": run.name,
        "path": str(run.path) if run.path else None,
        "source": "records" if records is not None else "locust",
        "targets": [h.describe() for h in a.hosts],
        "percentile_method": METHOD if records is not None else BUCKETED_NOTE,
        "metrics": {m.name: {"column": m.column, "formula": m.formula, "unit": m.unit} for m in METRICS},
        "slo": {
            "thresholds": [{"workload": s.workload or "*", "slo": s.key, "threshold": s.threshold} for s in a.slos],
            "verdicts": a.verdicts,
            "failed": a.slo_failed,
            "goodput": a.goodput,
            "goodput_by_level": a.goodput_by_level,
        },
        "capacity": None if a.capacity is None else {
            **a.capacity.to_json(), "line": a.capacity.line, "host_shares": a.capacity_shares,
        },
        "advice": [x.to_dict() for x in a.advice],
        "notes": a.notes,
        "replay": None if a.replay is None else a.replay.to_json(),
    }
    if records is not None:
        out["requests"] = {
            "total": len(records), "ok": int(records["ok"].sum()), "errors": int((~records["ok"]).sum()),
            "n_503": int(records["is_503"].sum()), "warmup": int(records["warmup"].sum()),
        }
        out["latency"] = a.latency
        out["latency_by_level"] = a.latency_by_level
        out["over_time"] = a.over_time
        out["errors"] = a.errors
        out["saturation"] = {"targets": sat.targets, "curve": sat.curve, "per_slot": sat.degradation}
        out["cold_starts"] = {"count": len(a.cold), "reloads": int((a.cold["kind"] == "reload").sum())
                              if not a.cold.empty else 0, "requests": a.cold}
        out["thinking"] = a.thinking
        out["prompt_cache"] = None if a.prompt_cache is None else a.prompt_cache.to_json()
    if a.locust is not None:
        out["locust"] = {"note": BUCKETED_NOTE, "entries": a.locust.entries, "users_curve": a.locust.users_curve,
                         "failures": a.locust.failures}
    result: dict[str, Any] = plain(out)
    return result
