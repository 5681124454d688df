"""Per-request derived metrics: one formula each, computed column-wise, never stored in the records.

Every formula here is printed in the report (``METRICS``); a value is missing (NaN) when an input is
missing or a denominator would be zero, e.g. TTFT without a first token or TPOT with one output token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Metric:
    column: str
    name: str
    formula: str
    unit: str
    note: str = ""


METRICS: tuple[Metric, ...] = (
    Metric("e2e_s", "e2e", "t_end - t_start", "s"),
    Metric("ttft_s", "TTFT", "t_first_token - t_start", "s", "missing when no content arrived"),
    Metric("thinking_ttft_s", "time to first thinking", "t_first_thinking - t_start", "s", "thinking models"),
    Metric("tpot_s", "TPOT", "(t_end - t_first_token) / (output_tokens - 1)", "s", "missing when output_tokens <= 1"),
    Metric("gen_tok_s", "per-request speed", "output_tokens / server_eval_s", "tok/s",
           "the server's decode rate; without server timers (t_end - t_first_token) / (output_tokens - 1) inverted"),
    Metric("slot_wait_s", "slot wait",
           "server_total_s - server_load_s - server_prompt_eval_s - server_eval_s", "s",
           "Ollama only: waiting for a parallel slot appears in total_duration alone"),
    Metric("load_s", "load time", "server_load_s", "s", "scheduler queue + model load; large values are cold starts"),
    Metric("overhead_s", "network and client overhead", "e2e - server_total_s", "s"),
    Metric("service_s", "service time", "server_prompt_eval_s + server_eval_s", "s",
           "time holding a slot; without server timers t_end - t_first_token"),
    Metric("busy_start", "server busy interval", "[t_end - server_eval_s - server_prompt_eval_s, t_end]", "epoch s",
           "when the request held a slot, on the client clock; without server timers [t_first_token, t_end]"),
    Metric("sched_lag_s", "scheduling lag", "t_start - t_scheduled", "s", "open-loop arrivals"),
)

#: The latency metrics reported with percentiles, in report order.
LATENCY_COLUMNS: tuple[str, ...] = (
    "e2e_s", "ttft_s", "tpot_s", "slot_wait_s", "load_s", "thinking_ttft_s", "gen_tok_s",
)


def _positive(values: pd.Series) -> pd.Series:
    return values.where(values > 0)


def derive(records: pd.DataFrame) -> pd.DataFrame:
    """Return ``records`` with the derived columns of ``METRICS`` plus ``ok``, ``is_503`` and ``timing``.

    ``timing`` says where a request's service interval came from: ``server`` (prompt-eval + eval
    timers), ``client`` (first token to end, when the server gave no timers) or missing.
    """
    r = records
    out = pd.DataFrame(index=r.index)
    out["e2e_s"] = r["t_end"] - r["t_start"]
    out["ttft_s"] = r["t_first_token"] - r["t_start"]
    out["thinking_ttft_s"] = r["t_first_thinking"] - r["t_start"]
    out["tpot_s"] = (r["t_end"] - r["t_first_token"]) / (r["output_tokens"] - 1).where(r["output_tokens"] > 1)
    out["slot_wait_s"] = r["server_total_s"] - r["server_load_s"] - r["server_prompt_eval_s"] - r["server_eval_s"]
    out["load_s"] = r["server_load_s"]
    out["overhead_s"] = out["e2e_s"] - r["server_total_s"]
    out["sched_lag_s"] = r["t_start"] - r["t_scheduled"]

    server_service = r["server_prompt_eval_s"].fillna(0.0) + r["server_eval_s"]
    client_service = r["t_end"] - r["t_first_token"]
    has_server = server_service.notna() & (r["server_eval_s"] > 0)
    has_client = ~has_server & client_service.notna() & (r["output_tokens"] > 1)
    out["service_s"] = server_service.where(has_server, client_service.where(has_client))
    # A slot is held inside the request's own lifetime; clip rounding and clock noise to it.
    out["busy_start"] = np.maximum(r["t_end"] - out["service_s"], r["t_start"])
    server_speed = r["output_tokens"] / _positive(r["server_eval_s"])
    client_speed = 1.0 / _positive(out["tpot_s"])
    out["gen_tok_s"] = server_speed.where(has_server, client_speed.where(has_client))
    out["timing"] = pd.Categorical(
        np.select([has_server.to_numpy(), has_client.to_numpy()], ["server", "client"], default=""),
        categories=["server", "client", ""],
    )
    out["ok"] = r["error"].isna() | (r["error"] == "")
    out["is_503"] = (r["error"] == "busy_503") | (r["status"] == 503)
    return pd.concat([r, out], axis=1)
