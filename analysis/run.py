"""A run as the analysis sees it: the records with their derived metrics, stages, metadata and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.metrics import derive
from analysis.stages import assign_stages, normalise_stages


@dataclass
class LocustData:
    """Locust's own CSVs (``--csv PREFIX``); any may be missing. Percentiles in them are bucketed."""

    stats: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    exceptions: pd.DataFrame | None = None


@dataclass
class Run:
    """Everything one run left behind, ready for the analysis functions.

    ``records`` holds one row per request (schema columns, ``analysis.metrics.derive`` columns and the
    stage columns of ``analysis.stages.assign_stages``), or ``None`` for a plain Locust run. ``capacity`` is
    ``capacity.json`` as read (a capacity search's answer; ``analysis.capacity_result.parse_capacity`` checks
    and types it), ``None`` in other runs. ``notes`` collects data-quality remarks (missing files, dropped
    lines) for the report.
    """

    name: str
    records: pd.DataFrame | None
    stages: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    server_metrics: pd.DataFrame | None = None
    capacity: dict[str, Any] | None = None
    locust: LocustData = field(default_factory=LocustData)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def has_records(self) -> bool:
        return self.records is not None and not self.records.empty


def make_run(
    name: str,
    records: pd.DataFrame | None,
    stages: pd.DataFrame | None = None,
    **kwargs: Any,
) -> Run:
    """Build a ``Run`` from raw tables (schema columns): derive metrics and place requests in stages."""
    run = Run(name=name, records=None, **kwargs)
    if stages is not None and not stages.empty:
        run.stages = normalise_stages(stages)
    if records is None:
        return run
    frame = derive(records)
    if run.stages is not None:
        placed = assign_stages(frame["t_start"], run.stages)
        outside = int((placed["stage"].isna()).sum())
        if outside:
            run.notes.append(f"{outside} requests started outside every stage in stages.csv")
    else:
        placed = pd.DataFrame(
            {"stage": "all", "level": "all", "mode": "", "users": float("nan"), "rate": float("nan"), "warmup": False},
            index=frame.index,
        ).astype({"stage": "category", "level": "category", "mode": "category"})
    run.records = pd.concat([frame, placed], axis=1)
    return run
