"""SLO thresholds, verdicts and goodput.

A latency SLO key is ``<metric>_p<NN>_s`` (``e2e_p95_s``, ``ttft_p95_s``, ``slot_wait_p95_s``, ``tpot_p99_s``...):
percentile NN of the metric over the successful requests outside warm-up must not exceed the value.
``error_rate`` bounds the share of failed requests (503s included). Thresholds come from run.json's ``slo``,
a workload's own ``slo`` in run.json's ``workloads``, and command-line overrides, in rising precedence.

Goodput counts requests that succeeded and whose own value of every latency SLO metric is within its
threshold (a request lacking the value, e.g. TTFT of a non-streamed request, is not held against it),
per second of the group's span ``max(t_end) - min(t_start)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.latency import measured
from analysis.run import Run

KEY = re.compile(r"^(?P<metric>[a-z][a-z0-9_]*?)_p(?P<q>\d+(?:\.\d+)?)_s$")
METRICS = frozenset({"e2e", "ttft", "tpot", "slot_wait", "load", "thinking_ttft"})
ALL = ""  # the workload key of run-wide thresholds


@dataclass(frozen=True, slots=True)
class Slo:
    key: str
    threshold: float
    workload: str = ALL  # empty: every workload

    @property
    def column(self) -> str | None:
        match = KEY.match(self.key)
        return f"{match['metric']}_s" if match else None

    @property
    def q(self) -> float | None:
        match = KEY.match(self.key)
        return float(match["q"]) / 100 if match else None


def valid_key(key: str) -> bool:
    match = KEY.match(key)
    return key == "error_rate" or bool(match and match["metric"] in METRICS and 0 < float(match["q"]) <= 100)


def slos(info: Mapping[str, Any], overrides: Mapping[str, float] | None = None) -> tuple[list[Slo], list[str]]:
    """The SLOs in force, and notes on keys that were ignored."""
    notes: list[str] = []
    found: dict[tuple[str, str], float] = {}

    def take(source: Any, workload: str, where: str) -> None:
        if not isinstance(source, Mapping):
            return
        for key, value in source.items():
            if not valid_key(str(key)) or not isinstance(value, int | float) or isinstance(value, bool):
                notes.append(f"{where}: SLO {key}={value!r} ignored (keys: <metric>_p<NN>_s or error_rate)")
                continue
            found[(workload, str(key))] = float(value)

    take(info.get("slo"), ALL, "run.json slo")
    for workload in info.get("workloads") or []:
        if isinstance(workload, Mapping) and workload.get("name"):
            take(workload.get("slo"), str(workload["name"]), f"run.json workload {workload['name']}")
    for key, value in (overrides or {}).items():
        for (workload, existing) in list(found):
            if existing == key:
                del found[(workload, existing)]
        take({key: value}, ALL, "--slo")
    return [Slo(key, value, workload) for (workload, key), value in sorted(found.items())], notes


def _columns(slo_list: Sequence[Slo]) -> list[str]:
    return [s.column for s in slo_list if s.column is not None]


def _applicable(slo_list: Sequence[Slo], workload: str) -> dict[str, Slo]:
    """The SLOs for one workload: its own override each run-wide threshold of the same key."""
    chosen = {s.key: s for s in slo_list if s.workload == ALL}
    chosen.update({s.key: s for s in slo_list if s.workload == workload})
    return chosen


def verdicts(run: Run, slo_list: Sequence[Slo]) -> pd.DataFrame:
    """One row per workload and SLO: threshold, observed value, requests counted, passed."""
    records = measured(run, ["workload", "ok", *_columns(slo_list)])
    rows = []
    if records.empty or not slo_list:
        return pd.DataFrame(columns=["workload", "slo", "threshold", "observed", "n", "passed"])
    for workload, group in records.groupby("workload", observed=True):
        for slo in _applicable(slo_list, str(workload)).values():
            if slo.key == "error_rate":
                n, observed = len(group), float((~group["ok"]).mean())
            else:
                values = group.loc[group["ok"], slo.column].dropna()
                n, observed = len(values), float(values.quantile(slo.q)) if len(values) else float("nan")
            passed = None if n == 0 else bool(observed <= slo.threshold)
            rows.append({"workload": str(workload), "slo": slo.key, "threshold": slo.threshold,
                         "observed": observed, "n": n, "passed": passed})
    return pd.DataFrame(rows)


def meets(records: pd.DataFrame, slo_list: Sequence[Slo]) -> pd.Series:
    """Per request: succeeded and within every latency SLO of its workload (missing values pass)."""
    good = records["ok"].copy()
    for workload, index in records.groupby("workload", observed=True).groups.items():
        for slo in _applicable(slo_list, str(workload)).values():
            if slo.column is not None:
                value = records.loc[index, slo.column]
                good.loc[index] &= ~(value > slo.threshold)
    return good


def goodput(run: Run, slo_list: Sequence[Slo], by: Sequence[str] = ("workload",)) -> pd.DataFrame:
    """Per group: requests, good requests, their share, the span in seconds and good requests per second."""
    records = measured(run, [*by, "workload", "ok", "t_start", "t_end", *_columns(slo_list)])
    if records.empty:
        return pd.DataFrame(columns=[*by, "requests", "good", "good_share", "span_s", "goodput_req_s"])
    frame = records[list(by) + ["t_start", "t_end"]].assign(good=meets(records, slo_list))
    table = frame.groupby(list(by), observed=True).agg(
        requests=("good", "size"), good=("good", "sum"), t0=("t_start", "min"), t1=("t_end", "max")
    )
    table["good_share"] = table["good"] / table["requests"]
    table["span_s"] = table["t1"] - table["t0"]
    table["goodput_req_s"] = table["good"] / table["span_s"].where(table["span_s"] > 0)
    return table.drop(columns=["t0", "t1"]).reset_index()


def failed(verdict_table: pd.DataFrame) -> bool:
    """True when any SLO verdict failed (the CLI then exits 1)."""
    return bool((verdict_table.get("passed", pd.Series(dtype=object)) == False).any())  # noqa: E712
