"""The saturation curve: one row per host, model and concurrency level, from the level's requests.

A level's requests are those of its stage(s) outside warm-up. Each stage (a closed round, or a whole
steady stage) is measured over its span, ``wall = max(t_end) - min(t_start)`` of its requests; a level
with several rounds reports the median over its rounds. By Little's law over the span, the mean number
of requests in flight is ``N = sum(e2e) / wall``, in service ``L = sum(service) / wall`` and waiting for a
slot ``Q = sum(slot_wait) / wall``.
"""

from __future__ import annotations

import pandas as pd

from analysis.stages import CURVE_MODES

KEYS = ["host", "model"]
#: Curve columns and what they mean (printed in the report).
COLUMNS: dict[str, str] = {
    "x": "concurrency: the stage's users (closed loop) or arrival rate (open loop)",
    "mode": "stage mode (round: closed rounds, steady: a held level, arrivals and replay: open loop)",
    "rounds": "stages (closed rounds) measured at this level",
    "requests": "requests outside warm-up",
    "errors": "failed requests (any class)",
    "n_503": "503 / server busy responses",
    "wall_s": "median over rounds of max(t_end) - min(t_start)",
    "agg_tok_s": "median over rounds of sum(output_tokens) / wall",
    "req_s": "median over rounds of successful requests / wall",
    "per_req_tok_s": "median per-request speed (output_tokens / server_eval_s)",
    "in_flight": "N = sum(e2e) / wall, mean requests in flight",
    "in_service": "L = sum(service) / wall, mean requests holding a slot",
    "waiting": "Q = sum(slot_wait) / wall, mean requests waiting for a slot",
    "service_s": "mean service time S = prefill + decode",
    "slot_wait_p50_s": "median slot wait",
    "slot_wait_p95_s": "p95 slot wait",
    "ttft_p50_s": "median TTFT",
    "ttft_p95_s": "p95 TTFT",
    "e2e_p50_s": "median e2e",
    "e2e_p95_s": "p95 e2e",
}


NEEDED = [*KEYS, "level", "stage", "mode", "users", "rate", "t_start", "t_end", "ok", "is_503", "output_tokens",
          "e2e_s", "service_s", "slot_wait_s", "gen_tok_s", "ttft_s"]


def curve_records(records: pd.DataFrame) -> pd.DataFrame:
    """The requests that describe a steady level: placed in a non-transition stage, outside warm-up."""
    mode = records["mode"].astype(object).fillna("")
    keep = records["stage"].notna() & ~records["warmup"] & mode.isin(list(CURVE_MODES))
    return records.loc[keep, NEEDED]


def round_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (host, model, level, stage): a closed round or a whole steady stage, measured over its span
    (``wall_s``, ``agg_tok_s``, ``req_s``, ``in_flight``, ``in_service``, ``waiting`` as in ``COLUMNS``, before the
    median over a level's rounds), with its ``requests`` and ``errors``."""
    return _rounds(curve_records(records))


def _rounds(r: pd.DataFrame) -> pd.DataFrame:
    ok = r["ok"]
    work = pd.DataFrame(
        {
            "host": r["host"], "model": r["model"], "level": r["level"], "stage": r["stage"],
            "t_start": r["t_start"], "t_end": r["t_end"], "error": ~ok, "n_503": r["is_503"], "ok": ok,
            "tokens": r["output_tokens"].where(ok, 0.0).fillna(0.0),
            "e2e": r["e2e_s"].where(ok, 0.0),
            "service": r["service_s"].where(ok),
            "wait": r["slot_wait_s"].where(ok),
        }
    )
    by_round = work.groupby([*KEYS, "level", "stage"], observed=True)
    rounds = by_round.agg(
        t0=("t_start", "min"), t1=("t_end", "max"), requests=("ok", "size"), ok=("ok", "sum"),
        errors=("error", "sum"), n_503=("n_503", "sum"), tokens=("tokens", "sum"), e2e=("e2e", "sum"),
        service=("service", "sum"), wait=("wait", "sum"), wait_n=("wait", "count"),
    )
    wall = (rounds["t1"] - rounds["t0"]).where(lambda w: w > 0)
    return rounds.assign(
        wall_s=wall, agg_tok_s=rounds["tokens"] / wall, req_s=rounds["ok"] / wall,
        in_flight=rounds["e2e"] / wall, in_service=rounds["service"] / wall,
        waiting=(rounds["wait"] / wall).where(rounds["wait_n"] > 0),
    ).reset_index()


def curve_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (host, model, level), sorted by concurrency ``x``; columns as in ``COLUMNS``."""
    r = curve_records(records)
    if r.empty:
        return pd.DataFrame(columns=[*KEYS, "level", *COLUMNS])
    ok = r["ok"]
    rounds = _rounds(r)
    by_level = rounds.groupby([*KEYS, "level"], observed=True)
    curve = by_level.agg(
        rounds=("stage", "size"), requests=("requests", "sum"), errors=("errors", "sum"), n_503=("n_503", "sum"),
        wall_s=("wall_s", "median"), agg_tok_s=("agg_tok_s", "median"), req_s=("req_s", "median"),
        in_flight=("in_flight", "median"), in_service=("in_service", "median"), waiting=("waiting", "median"),
    )
    served = r[ok].groupby([*KEYS, "level"], observed=True)
    curve["per_req_tok_s"] = served["gen_tok_s"].median()
    curve["service_s"] = served["service_s"].mean()
    for metric in ("slot_wait", "ttft", "e2e"):
        quantiles = served[f"{metric}_s"].quantile([0.5, 0.95]).unstack().reindex(columns=[0.5, 0.95])
        curve[f"{metric}_p50_s"] = quantiles[0.5]
        curve[f"{metric}_p95_s"] = quantiles[0.95]
    levels = r.groupby([*KEYS, "level"], observed=True).agg(
        users=("users", "first"), rate=("rate", "first"), mode=("mode", "first")
    )
    curve["x"] = levels["users"].fillna(levels["rate"])
    curve["mode"] = levels["mode"].astype(str)
    curve = curve.reset_index()
    curve["level"] = curve["level"].astype(str)
    return curve.sort_values([*KEYS, "x"], kind="stable").reset_index(drop=True)[[*KEYS, "level", *COLUMNS]]


def by_target(table: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Split a table with host and model columns into one frame per (host, model), in order."""
    return {(str(h), str(m)): g for (h, m), g in table.groupby(KEYS, observed=True, sort=True)}


def solo(curve: pd.DataFrame) -> pd.Series:
    """The lowest-concurrency row of one target's curve."""
    return curve.loc[curve["x"].idxmin()] if curve["x"].notna().any() else curve.iloc[0]

