"""Tiny record sets for metric tests: every field defaults to a plausible successful Ollama request."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.run import Run, make_run
from analysis.schema import RECORD_COLUMNS, STAGE_COLUMNS

DEFAULTS: dict[str, Any] = {
    "run_id": "r1", "worker": 0, "user_id": 1, "session_id": "s1", "step": 0, "workload": "chat",
    "kind": "chat", "host": "h1", "api": "ollama", "endpoint": "/api/chat", "model": "m", "stream": 1,
    "t_scheduled": None, "t_start": 0.0, "t_first_token": None, "t_first_thinking": None, "t_end": 1.0,
    "status": 200, "error": "", "error_detail": "", "prompt_tokens": 10, "cached_tokens": None,
    "output_tokens": 10, "thinking_tokens": None, "tool_calls": None, "server_total_s": None,
    "server_load_s": None, "server_prompt_eval_s": None, "server_eval_s": None, "num_predict": None,
    "done_reason": "stop",
}
assert set(DEFAULTS) == set(RECORD_COLUMNS)


def record(**fields: Any) -> dict[str, Any]:
    unknown = set(fields) - set(DEFAULTS)
    assert not unknown, unknown
    return {**DEFAULTS, **fields}


def served(t_start: float, wait: float, prefill: float, decode: float, tokens: int = 100, net: float = 0.0,
           load: float = 0.0, **fields: Any) -> dict[str, Any]:
    """A successful request with consistent client and server timers: sent at ``t_start``, ``net`` seconds of
    network before the server answers, then ``load``, slot ``wait``, ``prefill`` and ``decode``."""
    t_end = t_start + net + load + wait + prefill + decode
    return record(
        t_start=t_start, t_first_token=t_end - decode, t_end=t_end, output_tokens=tokens,
        server_total_s=load + wait + prefill + decode, server_load_s=load, server_prompt_eval_s=prefill,
        server_eval_s=decode, **fields,
    )


def records_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    numeric = [c for c in frame if c not in {"run_id", "session_id", "workload", "kind", "host", "api", "endpoint",
                                             "model", "error", "error_detail", "done_reason"}]
    frame[numeric] = frame[numeric].astype("float64")
    frame["error"] = frame["error"].replace("", None)
    return frame


def stages_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    defaults = {"mode": "steady", "users": None, "rate": None, "warmup_s": 0.0}
    return pd.DataFrame([{**defaults, **row} for row in rows], columns=list(STAGE_COLUMNS))


def run_of(rows: list[dict[str, Any]], stages: list[dict[str, Any]] | None = None, **kwargs: Any) -> Run:
    return make_run("test", records_frame(rows), stages_frame(stages) if stages else None, **kwargs)


def write_run_dir(directory: Path, rows: list[dict[str, Any]], stages: list[dict[str, Any]] | None = None,
                  info: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "requests.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RECORD_COLUMNS)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in RECORD_COLUMNS])
    if stages is not None:
        stages_frame(stages).to_csv(directory / "stages.csv", index=False)
    if info is not None:
        (directory / "run.json").write_text(json.dumps(info))
    return directory
