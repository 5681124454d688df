"""The run directory: where a run's files go, its id, ``run.json``, ``stages.csv`` and host probes."""

from __future__ import annotations

import csv
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from analysis.schema import RUN_FILE, STAGE_COLUMNS, STAGES_FILE, RunInfo


def new_run_id(results_dir: Path, scenario: str, variant: str | None = None, clock: float | None = None) -> str:
    """A sortable, readable run id that is free in ``results_dir``: ``20261122-004012-chat[-variant]``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clock))
    base = "-".join(_slug(part) for part in (stamp, scenario, variant) if part)
    run_id, n = base, 1
    while (results_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    write_json_atomically(run_dir / RUN_FILE, info)


@dataclass(slots=True)
class Stage:
    stage: str
    mode: str
    users: int | None
    rate: float | None
    t_begin: float
    warmup_s: float | None = 0.0  # None: the whole stage


class StageLog:
    """Appends one ``stages.csv`` row as each load stage ends (flushed at once)."""

    def __init__(self, run_dir: Path) -> None:
        self._file: TextIO | None = (run_dir / STAGES_FILE).open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(STAGE_COLUMNS)
        self._file.flush()
        self.current: Stage | None = None

    def begin(self, stage: str, mode: str, users: int | None, rate: float | None = None,
              warmup_s: float | None = 0.0, at: float | None = None) -> None:
        """End the current stage (if any) and begin a new one; ``warmup_s=None``: all of it is warm-up."""
        now = time.time() if at is None else at
        self.end(now)
        self.current = Stage(stage, mode, users, rate, now, warmup_s)

    def end(self, at: float | None = None) -> None:
        """End the current stage, writing its row."""
        stage, self.current = self.current, None
        if stage is None or self._file is None:
            return
        t_begin = round(stage.t_begin, 6)
        t_end = round(time.time() if at is None else at, 6)
        # From the written bounds, so that t_begin + warmup_s reaches t_end in the file itself.
        warmup_s = round(t_end - t_begin, 6) if stage.warmup_s is None else stage.warmup_s
        self._writer.writerow([stage.stage, stage.mode, _cell(stage.users), _cell(stage.rate),
                               t_begin, t_end, warmup_s])
        self._file.flush()

    def close(self) -> None:
        self.end()
        if self._file is not None:
            self._file.close()
            self._file = None


def _cell(value: object) -> object:
    return "" if value is None else value
