"""Place every request in the load stage (concurrency level) it started in, and flag warm-up."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Stage modes whose requests describe a steady concurrency level (ramps and drains are transitions).
CURVE_MODES = frozenset({"steady", "level", "round", "arrivals", "replay", "probe", ""})
#: Requests up to this many seconds before a stage's ``t_begin`` still belong to it (master vs worker
#: clocks, and the first request of a round sent a few ms before the stage row's timestamp).
CLOCK_TOLERANCE_S = 0.5


def normalise_stages(stages: pd.DataFrame) -> pd.DataFrame:
    """Fill optional stage columns and add ``level``: rounds ``c4/r2`` of one level share ``c4``."""
    s = stages.copy()
    s["stage"] = s["stage"].astype(str)
    s["mode"] = s["mode"].fillna("").astype(str) if "mode" in s else ""
    for column in ("users", "rate", "warmup_s"):
        s[column] = pd.to_numeric(s[column], errors="coerce") if column in s else np.nan
    s["warmup_s"] = s["warmup_s"].fillna(0.0)
    is_round = s["mode"] == "round"
    by_name = s["stage"].str.rpartition("/")[0]
    by_users = "c" + s["users"].fillna(0).astype(int).astype(str)
    s["level"] = s["stage"].where(~is_round, by_name.where(by_name != "", by_users))
    return s.reset_index(drop=True)


def assign_stages(t_start: pd.Series, stages: pd.DataFrame) -> pd.DataFrame:
    """For each request start time: ``stage``, ``level``, ``mode``, ``users``, ``rate`` and ``warmup``.

    A request belongs to the shortest stage whose ``[t_begin, t_end)`` contains its start (stages may
    nest, e.g. rounds inside a level); failing that, to a stage beginning within ``CLOCK_TOLERANCE_S``
    after it. Warm-up: it started within ``warmup_s`` of its stage's ``t_begin``.
    """
    starts = t_start.to_numpy(dtype=float)
    index = np.full(len(starts), -1)
    order = (stages["t_end"] - stages["t_begin"]).sort_values(ascending=False).index
    for lower in (0.0, CLOCK_TOLERANCE_S):
        for i in order:
            begin, end = stages.at[i, "t_begin"], stages.at[i, "t_end"]
            hit = (starts >= begin - lower) & (starts < end)
            if lower:
                hit &= index < 0
            index[hit] = i
    found = index >= 0
    picked = stages.reindex(np.where(found, index, -1)).reset_index(drop=True)
    out = picked[["stage", "level", "mode", "users", "rate"]].set_axis(t_start.index)
    begin = picked["t_begin"].to_numpy() + picked["warmup_s"].to_numpy()
    out["warmup"] = found & (starts < begin)
    for column in ("stage", "level", "mode"):
        out[column] = out[column].astype("category")
    return out
