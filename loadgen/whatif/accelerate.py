"""A scenario made ``factor`` times faster, to run against an emulator with ``speed: factor``: every time
the load generator waits or judges (durations, think times, tool latencies, pauses, SLO thresholds) is
divided by ``factor`` and every rate multiplied by it, so the run is the same experiment on a faster
clock. ``rescale`` turns its records back.

It works on the resolved scenario as plain data (``Scenario.to_payload``): seconds are floats there, and
distributions are mappings tagged with ``dist``.
"""

from __future__ import annotations

from typing import Any, Final

from loadgen.scenario.scenario import Scenario

#: Keys holding seconds, wherever they appear in a load shape, a stage or a probe.
TIME_KEYS: Final = frozenset({"duration", "level_duration", "stop_timeout", "probe_duration", "settle",
                              "max_duration"})
#: Keys holding events per second (requests, or users spawned), or a replay's speed.
RATE_KEYS: Final = frozenset({"rate", "start_rate", "max_rate", "rate_precision", "spawn_rate", "speed"})
#: SLO thresholds in seconds (error_rate is a share).
SLO_TIME_KEYS: Final = frozenset({"e2e_p95", "ttft_p95", "slot_wait_p95", "tpot_p95"})
#: Workload fields that are distributions of seconds.
TIME_DISTS: Final = ("think_time", "pause")
#: Fields of a distribution that scale with it (``sigma`` is a shape, ``integer`` a flag).
DIST_SCALES: Final = frozenset({"value", "min", "max", "mean", "sd", "median", "choice"})


def accelerate(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with its clock ``factor`` times faster (times divided, rates multiplied)."""
    data = scenario.model_dump(mode="json")
    data["load"] = _load(data["load"], factor)
    data["slo"] = _slo(data["slo"], factor)
    for workload in data["workloads"]:
        workload["slo"] = _slo(workload["slo"], factor)
        for key in TIME_DISTS:
            if key in workload:
                workload[key] = _dist(workload[key], factor)
        if isinstance(workload.get("tool_result"), dict):
            workload["tool_result"]["latency"] = _dist(workload["tool_result"]["latency"], factor)
    return Scenario.from_payload({**scenario.to_payload(), "scenario": data})


def _load(load: dict[str, Any], factor: float) -> dict[str, Any]:
    out = {key: _scaled(key, value, factor) for key, value in load.items()}
    for key in ("stages",):
        if isinstance(out.get(key), list):
            out[key] = [{k: _scaled(k, v, factor) for k, v in stage.items()} for stage in out[key]]
    return out


def _scaled(key: str, value: Any, factor: float) -> Any:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if key in TIME_KEYS:
        return value / factor
    if key in RATE_KEYS:
        return value * factor
    return value


def _slo(slo: dict[str, Any], factor: float) -> dict[str, Any]:
    return {key: value / factor if key in SLO_TIME_KEYS and value is not None else value for key, value in slo.items()}


def _dist(dist: dict[str, Any], factor: float) -> dict[str, Any]:
    def scale(value: Any) -> Any:
        if isinstance(value, list):
            return [scale(item) for item in value]
        return value / factor if isinstance(value, int | float) and not isinstance(value, bool) else value

    return {key: scale(value) if key in DIST_SCALES else value for key, value in dist.items()}
