"""Thinking models: thinking vs visible output, and budgets spent on thinking alone."""

from __future__ import annotations

import pandas as pd

from analysis.latency import measured
from analysis.run import Run


def thinking_summary(run: Run, by: tuple[str, ...] = ("workload", "model")) -> pd.DataFrame:
    """Per group with any thinking: requests, requests that thought, thinking chunks per output token,
    median time to first thinking and to first visible token, and requests cut by the length limit
    before any visible content (``done_reason == "length"`` and no first content token)."""
    r = measured(run, [*by, "thinking_tokens", "t_first_thinking", "output_tokens", "thinking_ttft_s", "ttft_s",
                       "ok", "done_reason", "t_first_token"])
    if r.empty:
        return pd.DataFrame()
    thought = (r["thinking_tokens"] > 0) | r["t_first_thinking"].notna()
    if not thought.any():
        return pd.DataFrame()
    frame = pd.DataFrame({c: r[c] for c in by}).assign(
        thought=thought,
        thinking=r["thinking_tokens"].fillna(0),
        output=r["output_tokens"].fillna(0),
        thinking_ttft_s=r["thinking_ttft_s"],
        ttft_s=r["ttft_s"],
        length_no_content=r["ok"] & (r["done_reason"].astype(object) == "length") & r["t_first_token"].isna(),
    )
    table = frame.groupby(list(by), observed=True).agg(
        requests=("thought", "size"), thought=("thought", "sum"), thinking=("thinking", "sum"),
        output=("output", "sum"), thinking_ttft_p50_s=("thinking_ttft_s", "median"), ttft_p50_s=("ttft_s", "median"),
        length_no_content=("length_no_content", "sum"),
    )
    table["thinking_share"] = table["thinking"] / table["output"].where(table["output"] > 0)
    return table.drop(columns=["thinking", "output"]).reset_index()
