"""A run recorded on an accelerated clock (``accelerate``), copied with every time back on the server's:
timestamps stretched from the run's start, durations multiplied, rates divided, SLO thresholds and the
capacity search's verdicts rescaled. The copy is a run directory the analysis reads like any other."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pandas as pd

from analysis.capacity import Check
from analysis.schema import CAPACITY_FILE, REQUESTS_FILE, RUN_FILE, SERVER_METRICS_FILE, STAGES_FILE
from loadgen.whatif.accelerate import RATE_KEYS, TIME_KEYS

TIMESTAMPS: Final = ("t_scheduled", "t_start", "t_first_token", "t_first_thinking", "t_end")
DURATIONS: Final = ("server_total_s", "server_load_s", "server_prompt_eval_s", "server_eval_s")


def rescale_run(source: Path, target: Path, factor: float, note: str) -> Path:
    """Copy run ``source``, recorded ``factor`` times faster, to ``target`` on the server's clock; ``note``
    (e.g. "predicted from RUN...") goes into run.json as ``predicted``."""
    target.mkdir(parents=True)
    info = json.loads((source / RUN_FILE).read_text())
    start = float(info["started_at"])

    def stretch(values: pd.Series) -> pd.Series:
        return start + (values - start) * factor

    requests = pd.read_csv(source / REQUESTS_FILE, keep_default_na=False, na_values=[""])
    for column in TIMESTAMPS:
        requests[column] = stretch(requests[column])
    for column in DURATIONS:
        requests[column] = requests[column] * factor
    requests.to_csv(target / REQUESTS_FILE, index=False)
    if (source / STAGES_FILE).exists():
        stages = pd.read_csv(source / STAGES_FILE, keep_default_na=False, na_values=[""])
        stages["t_begin"], stages["t_end"] = stretch(stages["t_begin"]), stretch(stages["t_end"])
        stages["warmup_s"] = stages["warmup_s"] * factor
        stages["rate"] = stages["rate"] / factor
        stages.to_csv(target / STAGES_FILE, index=False)
    if (source / SERVER_METRICS_FILE).exists():
        metrics = pd.read_csv(source / SERVER_METRICS_FILE, keep_default_na=False, na_values=[""])
        metrics["t"] = stretch(metrics["t"])
        metrics.to_csv(target / SERVER_METRICS_FILE, index=False)
    if (source / CAPACITY_FILE).exists():
        capacity = _capacity(json.loads((source / CAPACITY_FILE).read_text()), factor)
        (target / CAPACITY_FILE).write_text(json.dumps(capacity, indent=2))
    (target / RUN_FILE).write_text(json.dumps(_info(info, factor, note), indent=2))
    return target


def _info(info: dict[str, Any], factor: float, note: str) -> dict[str, Any]:
    out = dict(info)
    if info.get("ended_at") is not None:
        out["ended_at"] = info["started_at"] + (info["ended_at"] - info["started_at"]) * factor
    out["slo"] = _slo(info.get("slo") or {}, factor)
    out["workloads"] = [{**w, "slo": _slo(w.get("slo") or {}, factor)} for w in info.get("workloads") or []]
    load = dict(info.get("load") or {})
    for key, value in load.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            load[key] = value * factor if key in TIME_KEYS else value / factor if key in RATE_KEYS else value
    out["load"] = load
    out["predicted"] = {"note": note, "time_factor": factor}
    return out


def _slo(slo: dict[str, float], factor: float) -> dict[str, float]:
    """Thresholds in seconds (``e2e_p95_s``) stretched; ``error_rate`` is a share."""
    return {key: value * factor if key.endswith("_s") else value for key, value in slo.items()}


def _capacity(data: dict[str, Any], factor: float) -> dict[str, Any]:
    """capacity.json back on the server's clock: rates (an arrivals search), the probes' checks, the verdict texts."""
    out = dict(data)
    if data.get("unit") != "users":
        for key in ("value", "last_pass", "first_fail", "bound", "min"):
            if isinstance(out.get(key), int | float):
                out[key] = out[key] / factor
    probes = []
    for probe in data.get("probes") or []:
        probe = dict(probe)
        if "rate" in probe and isinstance(probe["rate"], int | float):
            probe["rate"] = probe["rate"] / factor
        probe["checks"] = [_check(check, factor) for check in probe.get("checks") or []]
        probes.append(probe)
    out["probes"] = probes
    level = "users" if data.get("unit") == "users" else "rate"
    out["last_pass_text"] = _text(probes, level, out.get("last_pass"), passed=True)
    out["first_fail_text"] = _text(probes, level, out.get("first_fail"), passed=False)
    return out


def _check(check: dict[str, Any], factor: float) -> dict[str, Any]:
    if not str(check.get("slo", "")).endswith("_s"):
        return check
    return {**check, **{key: check[key] * factor for key in ("threshold", "observed", "low", "high")
                        if isinstance(check.get(key), int | float)}}


def _text(probes: Iterable[dict[str, Any]], level: str, value: object, passed: bool) -> str:
    """The verdict of the probe at ``value``, in the words of the capacity search: its check closest to (or
    furthest beyond) its threshold."""
    if not isinstance(value, int | float):
        return ""
    at = [p for p in probes if isinstance(p.get(level), int | float) and math.isclose(p[level], value)]
    checks = [Check(c["workload"], c["slo"], c["threshold"], _number(c["observed"]), _number(c["low"]),
                    _number(c["high"]), c["n"]) for p in at[-1:] for c in p["checks"]]
    judged = [c for c in checks if c.passed == passed and c.threshold > 0 and math.isfinite(c.observed)]
    if not judged:
        return ""
    return max(judged, key=lambda c: c.observed / c.threshold).describe()


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan
