"""Cold starts and reloads: requests whose load time stands out from their host and model's usual.

A request is cold when ``load_s >= max(FLOOR_S, FACTOR * median load_s)`` of its host and model. It is a
reload (not the first load) when a warm request for the same host and model had already completed
before it was sent: the model was in memory and had to be loaded again (keep-alive expiry, eviction by
another model, or per-request options such as ``num_ctx`` that differ from the loaded runner's).
"""

from __future__ import annotations

import pandas as pd

from analysis.run import Run

FLOOR_S = 0.5
FACTOR = 10.0
#: The columns of ``cold_starts``' table, empty or not.
COLUMNS = ["host", "model", "workload", "t_s", "load_s", "kind", "done_reason"]


def cold_starts(run: Run) -> pd.DataFrame:
    """One row per cold request: host, model, workload, seconds from the run's start, load_s, kind (cold start
    or reload) and done_reason."""
    if not run.has_records:
        return pd.DataFrame(columns=COLUMNS)
    needed = ["host", "model", "workload", "t_start", "t_end", "load_s", "ok", "done_reason"]
    assert run.records is not None  # has_records
    r = run.records[needed].dropna(subset=["load_s"])
    if r.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["host", "model"]
    typical = r.groupby(keys, observed=True)["load_s"].transform("median")
    cold = r["load_s"] >= (FACTOR * typical).clip(lower=FLOOR_S)
    warm_end = r["t_end"].where(~cold & r["ok"])
    first_warm = warm_end.groupby([r[k] for k in keys], observed=True).transform("min")
    hits = r[cold]
    table = pd.DataFrame(
        {
            "host": hits["host"].astype(str), "model": hits["model"].astype(str),
            "workload": hits["workload"].astype(str),
            "t_s": hits["t_start"] - run.records["t_start"].min(),
            "load_s": hits["load_s"],
            "kind": (hits["t_start"] > first_warm[cold]).map({True: "reload", False: "cold start"}),
            "done_reason": hits["done_reason"].astype(object),
        }
    )
    return table.sort_values("t_s").reset_index(drop=True)
