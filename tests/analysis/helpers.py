"""Tiny record sets for metric tests: every field defaults to a plausible successful Ollama request. And small
closed-round sweeps against a FIFO server with a chosen slot count, for the advice tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.analyze import analyze
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


PerWave = Mapping[int, float] | float  # a value per wave size, or one for every wave


def _per_wave(value: PerWave, wave: int) -> float:
    return value if isinstance(value, int | float) else value[wave]


def fifo_round(
    t0: float, users: int, slots: int, speeds: PerWave, prefill: PerWave = 0.0, tokens: int = 100
) -> list[dict[str, Any]]:
    """One closed round on a FIFO server with ``slots`` slots and no network delay: ``users`` requests sent
    together at ``t0``, served in waves of up to ``slots``. Each request of a wave of w takes ``prefill[w]`` s,
    then decodes ``tokens`` at ``speeds[w]`` tok/s; the next wave starts when it ends."""
    rows: list[dict[str, Any]] = []
    start = t0
    for first in range(0, users, slots):
        wave = min(slots, users - first)
        prefill_s, decode = _per_wave(prefill, wave), tokens / _per_wave(speeds, wave)
        rows += [served(t0, start - t0, prefill_s, decode, tokens, user_id=first + i) for i in range(wave)]
        start += prefill_s + decode
    return rows


def round_stage(users: int, t_begin: float, t_end: float) -> dict[str, Any]:
    """The stage row of a single closed round at concurrency ``users``."""
    return {"stage": f"c{users}/r1", "mode": "round", "users": users, "t_begin": t_begin, "t_end": t_end}


SPACING_S = 100.0  # sweep rounds start this far apart, so no round runs into the next


def sweep(
    levels: Sequence[int], slots: int, speeds: PerWave, prefill: PerWave = 0.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and stages of one ``fifo_round`` per concurrency in ``levels``, ``SPACING_S`` apart."""
    rows: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    for index, users in enumerate(levels):
        t0 = index * SPACING_S
        rows += fifo_round(t0, users, slots, speeds, prefill)
        stages.append(round_stage(users, t0, t0 + SPACING_S))
    return rows, stages


def uniform_sweep(
    slots: int = 2, levels: Sequence[int] = (1, 2, 4)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A ``sweep`` in which every request holds its slot for 0.5 s prefill + 0.75 s decoding 100 tokens
    (133.3 tok/s): mean prefill 0.50 s, service S = 1.25 s.

    With 2 slots at levels 1, 2, 4 the slots come out as a plain 2. The round of 4 runs as two waves: in
    flight N = (1.25 + 1.25 + 2.5 + 2.5) / 2.5 = 3, in service L = 4 x 1.25 / 2.5 = 2, waiting
    Q = 2 x 1.25 / 2.5 = 1; rho = L / N = 1 at c1, so the fit's k = 2 predicts L = min(3, 2) = 2 and
    Q = 3 - 2 = 1 exactly. The clients had >= 3 in flight for 1.25 s (c4's first wave), as long as the median
    service time, so m = 3 is judged, and the server never ran 3: overlap 2, not a lower bound.
    """
    return sweep(levels, slots, speeds=100 / 0.75, prefill=0.5)


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


def advice_on(run: Run, topic: str) -> list[str]:
    """The texts of the advice on ``topic`` that the report shows for ``run``."""
    return [item.text for item in analyze(run).advice if item.topic == topic]
