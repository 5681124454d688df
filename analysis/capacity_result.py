"""``capacity.json`` as the analysis reads it: the capacity search's answer, its probes and the CI gate, and
what the report shows of them (the probe table, the limiting metric against the level, each host's share of
the requests at capacity). Each probe was judged during the run (``analysis.capacity.judge``); this module
reads those verdicts, it does not judge again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import pandas as pd

from analysis.capacity import Check, ProbeVerdict, capacity_line
from analysis.document import cell

#: A capacity's unit, and the key of a probe's level in ``capacity.json`` for it.
LEVEL_KEYS: Final = {"users": "users", "req/s": "rate"}
OUTCOMES: Final = ("found", "bound", "none", "time")
VERDICTS: Final = ("pass", "fail", "close")
_REQUIRED: Final = object()


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe of the search: a level held, its verdict and every check it was judged on."""

    stage: str  # its stages.csv label
    level: float  # users, or an arrival rate
    repeat: int  # 1 for the second run of a level too close to call
    requests: int
    verdict: str  # pass, fail or close
    passed: bool  # within every threshold and not stopped early
    early_stop: str  # why it was cut short; "" when it was not
    checks: tuple[Check, ...]

    @property
    def deciding(self) -> Check | None:
        """The check furthest beyond its threshold, else the closest to it (``ProbeVerdict.limiting``)."""
        return ProbeVerdict(self.checks).limiting

    def check(self, workload: str | None, slo: str) -> Check | None:
        """Its check of ``slo`` (for ``workload``, when given)."""
        return next((c for c in self.checks if c.slo == slo and workload in (None, c.workload)), None)


@dataclass(frozen=True, slots=True)
class CapacityResult:
    """The search's answer: ``value`` users (or req/s) held within the SLOs, and how it was found."""

    unit: str  # "users" or "req/s"
    value: float  # the capacity: the last level that passed (0 when none did)
    last_pass: float | None
    first_fail: float | None
    limiting: str | None  # the SLO key that decided where capacity ends
    limiting_workload: str | None
    outcome: str | None  # found, bound (the search's bound passed), none (the first level failed), time
    bound: float | None
    confidence: float | None
    min: float | None  # the CI gate: the capacity must reach it
    last_pass_text: str
    first_fail_text: str
    probes: tuple[Probe, ...]

    @property
    def level_key(self) -> str:
        return LEVEL_KEYS[self.unit]

    @property
    def passed_gate(self) -> bool | None:
        """Whether the capacity reached the gate; None without one."""
        return None if self.min is None else self.value >= self.min

    @property
    def line(self) -> str:
        return capacity_line(self.to_json())

    def gated(self, minimum: float | None) -> CapacityResult:
        """The same answer judged against ``minimum`` instead of the file's gate (None: keep it)."""
        return self if minimum is None else replace(self, min=minimum)

    def to_json(self) -> dict[str, Any]:
        """In ``capacity.json``'s format (NaN where a value is missing), with ``passed_gate`` for the gate held."""
        return {
            "unit": self.unit, "value": self._level(self.value), "last_pass": self._level(self.last_pass),
            "first_fail": self._level(self.first_fail), "limiting": self.limiting,
            "limiting_workload": self.limiting_workload, "outcome": self.outcome, "bound": self._level(self.bound),
            "confidence": self.confidence, "min": self.min, "passed_gate": self.passed_gate,
            "last_pass_text": self.last_pass_text, "first_fail_text": self.first_fail_text,
            "probes": [
                {"stage": p.stage, self.level_key: self._level(p.level), "repeat": p.repeat, "requests": p.requests,
                 "verdict": p.verdict, "passed": p.passed, "early_stop": p.early_stop,
                 "checks": [_check_json(c) for c in p.checks]}
                for p in self.probes
            ],
        }

    def _level(self, level: float | None) -> float | int | None:
        """Users are whole; a rate is not."""
        return int(level) if level is not None and self.unit == "users" and float(level).is_integer() else level


def parse_capacity(data: object) -> CapacityResult:
    """``capacity.json``'s content, checked against its format; ``ValueError`` naming the first field that is
    not what the format says (missing, or of the wrong type)."""
    top = _mapping(data, "")
    unit = _get(top, "unit", str)
    if unit not in LEVEL_KEYS:
        raise ValueError(f"unit {unit!r}: expected one of {', '.join(LEVEL_KEYS)}")
    outcome = _get(top, "outcome", str, nullable=True)
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    probes = _get(top, "probes", list)
    return CapacityResult(
        unit=unit,
        value=_get(top, "value", float),
        last_pass=_get(top, "last_pass", float, nullable=True),
        first_fail=_get(top, "first_fail", float, nullable=True),
        limiting=_get(top, "limiting", str, nullable=True),
        limiting_workload=_get(top, "limiting_workload", str, None),
        outcome=outcome,
        bound=_get(top, "bound", float, None),
        confidence=_get(top, "confidence", float, None),
        min=_get(top, "min", float, None),
        last_pass_text=_get(top, "last_pass_text", str, ""),
        first_fail_text=_get(top, "first_fail_text", str, ""),
        probes=tuple(_probe(_mapping(p, f"probes[{i}]."), f"probes[{i}].", LEVEL_KEYS[unit])
                     for i, p in enumerate(probes)),
    )


def probe_table(result: CapacityResult) -> pd.DataFrame:
    """One row per probe, in the order they ran: its level, requests and verdict, its deciding check's observed
    value with the interval and threshold, and why it stopped early."""
    workloads = {c.workload for p in result.probes for c in p.checks}
    rows = []
    for probe in result.probes:
        row = {"stage": probe.stage, result.level_key: probe.level, "requests": probe.requests,
               "verdict": probe.verdict, "passed": probe.passed, "check": "-", "observed": math.nan,
               "interval": "-", "threshold": math.nan, "early_stop": probe.early_stop or "-"}
        if (c := probe.deciding) is not None:
            row |= {"check": f"{c.workload} {c.slo}" if len(workloads) > 1 else c.slo, "observed": c.observed,
                    "interval": _interval(c), "threshold": c.threshold}
        rows.append(row)
    return pd.DataFrame(rows, columns=["stage", result.level_key, "requests", "verdict", "passed", "check",
                                       "observed", "interval", "threshold", "early_stop"])


def limiting_curve(result: CapacityResult) -> pd.DataFrame:
    """The limiting check per level, sorted by level: ``level``, ``observed``, ``low``, ``high``, ``threshold``.
    A level probed twice (too close to call) shows its last probe, judged on both runs' requests."""
    if result.limiting is None:
        return pd.DataFrame(columns=["level", "observed", "low", "high", "threshold"])
    last = {p.level: p for p in result.probes}
    rows = [(level, c.observed, c.low, c.high, c.threshold) for level, probe in sorted(last.items())
            if (c := probe.check(result.limiting_workload, result.limiting)) is not None]
    return pd.DataFrame(rows, columns=["level", "observed", "low", "high", "threshold"])


def host_shares(records: pd.DataFrame, result: CapacityResult, hosts: Iterable[str] = ()) -> pd.DataFrame:
    """Each host's requests at the last passing level (its probes' stages, warm-up and cancelled requests left
    out) and its share of them: the fleet's capacity split by host, as the routing spread it. ``hosts``: every
    host of the scenario, so one that received nothing shows 0."""
    stages = {p.stage for p in result.probes if p.level == result.last_pass}
    if not stages:
        return pd.DataFrame(columns=["host", "requests", "share"])
    at = records[records["stage"].astype(object).isin(stages) & ~records["warmup"]
                 & (records["error"].astype(object) != "cancelled")]
    counts = at["host"].astype(str).value_counts()
    names = list(dict.fromkeys([*hosts, *sorted(counts.index)]))
    table = counts.reindex(names, fill_value=0).rename("requests").rename_axis("host").reset_index()
    total = int(table["requests"].sum())
    table["share"] = table["requests"] / total if total else math.nan
    return table


def _check_json(c: Check) -> dict[str, Any]:
    return {"workload": c.workload, "slo": c.slo, "threshold": c.threshold, "observed": c.observed, "low": c.low,
            "high": c.high, "n": c.n, "verdict": c.verdict}


def _interval(c: Check) -> str:
    """``low-high``; ``-`` for a count (error_rate), which has none."""
    if c.low == c.high or math.isnan(c.low):
        return "-"
    return f"{cell(c.low)}-{cell(c.high)}"


def _probe(entry: Mapping[str, Any], where: str, level_key: str) -> Probe:
    verdict = _get(entry, "verdict", str, where=where)
    if verdict not in VERDICTS:
        raise ValueError(f"{where}verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
    checks = _get(entry, "checks", list, where=where)
    return Probe(
        stage=_get(entry, "stage", str, where=where),
        level=_get(entry, level_key, float, where=where),
        repeat=int(_get(entry, "repeat", float, 0, where=where)),
        requests=int(_get(entry, "requests", float, where=where)),
        verdict=verdict,
        passed=_get(entry, "passed", bool, verdict == "pass", where=where),
        early_stop=_get(entry, "early_stop", str, "", where=where),
        checks=tuple(_check(_mapping(c, f"{where}checks[{i}]."), f"{where}checks[{i}].") for i, c in enumerate(checks)),
    )


def _check(entry: Mapping[str, Any], where: str) -> Check:
    def number(key: str) -> float:
        value = _get(entry, key, float, nullable=True, where=where)
        return math.nan if value is None else value

    return Check(_get(entry, "workload", str, where=where), _get(entry, "slo", str, where=where),
                 _get(entry, "threshold", float, where=where), number("observed"), number("low"), number("high"),
                 int(_get(entry, "n", float, where=where)))


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where.rstrip('.') + ': ' if where else ''}expected a JSON object, got {_kind(value)}")
    return value


def _get(entry: Mapping[str, Any], key: str, kind: type, default: Any = _REQUIRED, *, nullable: bool = False,
         where: str = "") -> Any:
    """``entry[key]``, checked to be a ``kind`` (``float``: any number); ``default`` when absent (and, when
    the default is None, also when null). Required without a default; null only when ``nullable``."""
    if key not in entry:
        if default is _REQUIRED:
            raise ValueError(f"{where}{key} missing")
        return default
    value = entry[key]
    if value is None and (nullable or (default is None)):
        return None
    numeric = kind is float and isinstance(value, int | float)
    if isinstance(value, bool) != (kind is bool) or not (numeric or isinstance(value, kind)):
        raise ValueError(f"{where}{key}: expected {_NAMES.get(kind, kind.__name__)}, got {_kind(value)}")
    return float(value) if numeric else value


_NAMES: Final = {float: "a number", str: "text", bool: "true or false", list: "a list"}


def _kind(value: object) -> str:
    return "null" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
