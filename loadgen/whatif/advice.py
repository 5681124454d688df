"""The what-if's answer in one sentence: the setting to use, with the capacity the twin predicts for it and
what the measured runs it was fitted from held, e.g. ``with num_parallel=2 this box holds 6 users within
your SLOs (predicted; measured at num_parallel=4: 5 users)``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.capacity_result import parse_capacity
from analysis.schema import CAPACITY_FILE, RUN_FILE
from analysis.slots import configured_slots


def advice(compare: dict[str, Any], source_runs: Sequence[Path], host: str | None) -> str | None:
    """The sentence, from compare.json of the predicted runs and the twin's source runs; None without a
    recommendation."""
    recommendation = compare.get("recommendation") or {}
    setting = recommendation.get("setting")
    if not setting:
        return f"predicted: {recommendation['line']}" if recommendation.get("line") else None
    label = ", ".join(f"{key}={value}" for key, value in setting.items())
    row = next((r for r in compare.get("setting_curve") or [] if r["setting"] == setting), None)
    if row is None or row.get("capacity") is None:
        return f"predicted: {recommendation['line']}"
    measured = [f"measured at num_parallel={slots}: {value:g} {unit}" for slots, value, unit in
                _measured_capacities(source_runs, host)]
    return (f"with {label} this box holds {row['capacity']:g} {row['capacity_unit']} within your SLOs "
            f"(predicted{'; ' + '; '.join(measured) if measured else ''})")


def _measured_capacities(runs: Sequence[Path], host: str | None) -> list[tuple[int | None, float, str]]:
    """(configured slots, capacity, unit) of each source run that searched for its capacity."""
    found = []
    for run in runs:
        if not (run / CAPACITY_FILE).exists():
            continue
        result = parse_capacity(json.loads((run / CAPACITY_FILE).read_text()))
        info = json.loads((run / RUN_FILE).read_text()) if (run / RUN_FILE).exists() else {}
        found.append((configured_slots(info, host or ""), float(result.value), result.unit))
    return found
