"""Per request: how long it decoded, how fast, and how many sequences decoded beside it.

Decode time is the server's eval timer (Ollama ``eval_duration``, llama.cpp ``timings.predicted_ms``) when
there is one, else ``t_end - first token`` of a streamed request. The decode interval on the client clock
is ``[t_end - decode_s, t_end]``; a request's batch is the time-weighted mean number of the run's decode
intervals on its host overlapping its own, itself included.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

SERVER: Final = "server"  # the server's eval timer
CLIENT: Final = "client"  # streamed: first token (thinking or content) received to the last
#: What each decode source measures, for the report.
SOURCE_TEXT: Final = {
    SERVER: "the server's eval timer (Ollama eval_duration, llama.cpp timings.predicted_ms)",
    CLIENT: "the client clock, first streamed token to the end (no server timers)",
}
#: ``round(batch)`` with halves going up (Python's ``round`` sends 2.5 to 2).
HALF: Final = 0.5

COLUMNS: Final = ["host", "model", "output_tokens", "decode_s", "decode_source", "speed", "t_end", "batch", "b"]


def succeeded(records: pd.DataFrame) -> pd.Series:
    """Status 200 and no error class."""
    error = records["error"].astype("string").fillna("")
    return (records["status"] == 200) & (error == "")


def decode_requests(records: pd.DataFrame) -> pd.DataFrame:
    """One row per successful request of one run with output tokens and a known decode time (``COLUMNS``).

    ``speed`` is ``output_tokens / decode_s`` from the server's timer. From the client clock it is
    ``(output_tokens - 1) / decode_s``: the first token had already been decoded when it arrived (the
    same count as ``analysis.metrics``' TPOT).
    """
    r = records
    ok = succeeded(r) & (r["output_tokens"] > 0)
    server = r["server_eval_s"] > 0
    first = r[["t_first_token", "t_first_thinking"]].min(axis=1)
    client_s = r["t_end"] - first
    client = ~server & (r["stream"] == 1) & (client_s > 0) & (r["output_tokens"] > 1)
    keep = ok & (server | client)
    if not keep.any():
        return pd.DataFrame(columns=COLUMNS)
    decode_s = r["server_eval_s"].where(server, client_s)[keep].astype(float)
    tokens = r["output_tokens"][keep].astype(float)
    is_server = server[keep]
    out = pd.DataFrame(
        {
            "host": r["host"][keep].astype(str),
            "model": r["model"][keep].astype(str),
            "output_tokens": tokens,
            "decode_s": decode_s,
            "decode_source": np.where(is_server, SERVER, CLIENT),
            "speed": tokens.where(is_server, tokens - 1) / decode_s,
            "t_end": r["t_end"][keep].astype(float),
        }
    )
    out["batch"] = np.nan
    for _, rows in out.groupby("host", sort=False):
        ends = rows["t_end"].to_numpy()
        out.loc[rows.index, "batch"] = mean_overlap(ends - rows["decode_s"].to_numpy(), ends)
    out["b"] = np.floor(out["batch"] + HALF).astype(int)
    return out[COLUMNS]


def mean_overlap(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each interval ``[starts[i], ends[i]]`` (``ends > starts``): the time-weighted mean number of the
    intervals overlapping it, itself included."""
    return mean_cover(starts, ends, starts, ends)


def mean_cover(starts: np.ndarray, ends: np.ndarray, from_: np.ndarray, to: np.ndarray) -> np.ndarray:
    """For each query interval ``[from_[i], to[i]]`` (``to > from_``): the time-weighted mean number of the
    intervals ``[starts, ends]`` open over it."""
    points = np.unique(np.concatenate([starts, ends, from_, to]))
    # intervals open on [points[k], points[k+1]): started at or before points[k], not yet ended
    open_ = np.searchsorted(np.sort(starts), points, side="right") - np.searchsorted(np.sort(ends), points,
                                                                                     side="right")
    area = np.concatenate([[0.0], np.cumsum(open_[:-1] * np.diff(points))])  # integral from points[0]
    covered = area[np.searchsorted(points, to)] - area[np.searchsorted(points, from_)]
    result: np.ndarray = covered / (to - from_)
    return result
