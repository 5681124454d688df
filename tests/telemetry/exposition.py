"""What a Prometheus exposition and a run's records say, side by side: the reconciliation the telemetry
tests share (requests, tokens and errors per workload)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from loadgen.telemetry import catalog as c

Totals = dict[tuple[str, ...], float]


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of an exposition: (series name, labels, value)."""
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def label(key: str) -> str:
    """The Prometheus label of an OTel attribute key: ``gen_ai.token.type`` -> ``gen_ai_token_type``."""
    return key.replace(".", "_")


def totals(points: list[tuple[str, dict[str, str], float]], series: str, *keys: str) -> Totals:
    """``sum by (keys) (series)``: values summed over every other label."""
    out: Counter[tuple[str, ...]] = Counter()
    for name, labels, value in points:
        if name == series:
            out[tuple(labels.get(label(k), "") for k in keys)] += value
    return dict(out)


def from_records(records: pd.DataFrame) -> dict[str, Totals]:
    """The same totals computed from ``requests.csv``: what the exporters must agree with."""
    ok = records[records.error.isna() | (records.error == "")]
    failed = records[~records.index.isin(ok.index)]
    tokens: Counter[tuple[str, ...]] = Counter()
    for kind, column in (("input", "prompt_tokens"), ("output", "output_tokens")):
        for workload, total in ok.groupby("workload")[column].sum().items():
            tokens[(str(workload), kind)] += float(total)
    return {
        "requests": {(str(w),): float(n) for w, n in records.groupby("workload").size().items()},
        "tokens": dict(tokens),
        "errors": {(str(w), str(e)): float(n) for (w, e), n in failed.groupby(["workload", "error"]).size().items()},
    }


def from_exposition(text: str) -> dict[str, Totals]:
    """Requests, tokens and errors per workload as a scrape of ``/metrics`` gives them."""
    points = samples(text)
    return {
        "requests": totals(points, "gen_ai_client_operation_duration_seconds_count", c.WORKLOAD),
        "tokens": totals(points, "gen_ai_client_token_usage_sum", c.WORKLOAD, c.TOKEN_TYPE),
        "errors": totals(points, "ollama_loadtest_errors_total", c.WORKLOAD, c.ERROR_TYPE),
    }


def scenario(workloads: list[dict[str, Any]], load: dict[str, Any], faults: str = "") -> dict[str, Any]:
    """Two workloads on an embedded emulator (native API, streaming) that answers some requests 503."""
    settings: dict[str, Any] = {"num_parallel": 2, "preset": "m1", "speed": 20}
    if faults:
        settings["faults"] = faults
    return {"name": "telemetry", "model": "llama3.2:latest", "options": {"num_predict": 16, "temperature": 0},
            "hosts": [{"name": "emu", "embedded": "emulator", "settings": settings}],
            "workloads": workloads, "load": load}


WORKLOADS = [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0},
             {"name": "batch", "kind": "batch", "batch_size": 2, "pause": 0.2}]
