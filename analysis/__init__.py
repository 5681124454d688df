"""Turn a run's records and Locust's CSVs into slot-saturation and p95-latency reports.

Pandas only, no Locust. Importing ``analysis`` (or ``analysis.schema``, the record contract, pure standard
library) does not import pandas: load-generating workers import the schema and must not pay for it. The
notebook API below is loaded on first use::

    from analysis import load_run, latency_table, saturation_curve, effective_slots
    run = load_run("results/my-run")
    latency_table(run, by=["workload", "level"])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "load_run": "analysis.load",
    "make_run": "analysis.run",
    "Run": "analysis.run",
    "InputError": "analysis.errors",
    "analyze": "analysis.analyze",
    "Analysis": "analysis.analyze",
    "summary": "analysis.summary",
    "latency_table": "analysis.latency",
    "latency_over_time": "analysis.latency",
    "error_table": "analysis.latency",
    "saturation_curve": "analysis.saturation",
    "effective_slots": "analysis.saturation",
    "analyze_saturation": "analysis.saturation",
    "cold_starts": "analysis.coldstart",
    "thinking_summary": "analysis.thinking",
    "slos": "analysis.slo",
    "verdicts": "analysis.slo",
    "goodput": "analysis.slo",
    "build_report": "analysis.report",
    "build_compare": "analysis.compare",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
