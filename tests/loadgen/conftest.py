"""How the workload tests read their records and compare variants. (``run_locust``, ``start_locust`` and
``scenario_file`` are in ``tests/conftest.py``; ``interrupt`` is in ``tests/helpers.py``.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tests.helpers import REPO, read_records


@dataclass
class Comparison:
    """What ``python -m locustfiles run`` compared: per run (labelled by variant) its slots and curve."""

    scenario: Path  # the scenario file the runs ran (the shipped one, changed)
    results: Path
    targets: dict[str, dict[str, Any]]  # variant -> slots, serial, server_metrics...
    curves: dict[str, pd.DataFrame]  # variant -> the level-by-level curve, indexed by concurrency
    summary: dict[str, Any]  # compare.json as written

    def records(self, variant: str) -> pd.DataFrame:
        (run_dir,) = self.results.glob(f"*-{variant}")
        return read_records(run_dir / "requests.csv")


def run_variants(tmp_path: Path, scenario_file: str, change: Callable[[dict[str, Any]], None]) -> Comparison:
    """Run a shipped scenario with variants (``scenarios/<scenario_file>``, edited by ``change``) the
    way the README does, and read the comparison it wrote."""
    scenario = yaml.safe_load((REPO / "scenarios" / scenario_file).read_text())
    change(scenario)
    path = tmp_path / scenario_file
    path.write_text(yaml.safe_dump(scenario))
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "locustfiles", "run", str(path), "--results-dir", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (compare,) = results.glob("*-compare/compare.json")
    assert compare.with_name("compare.html").exists()
    summary = json.loads(compare.read_text())
    curves = pd.DataFrame(summary["curves"])
    return Comparison(
        scenario=path,
        results=results,
        targets={t["run"]: t for t in summary["targets"]},
        curves={run: curve.set_index("x") for run, curve in curves.groupby("run")},
        summary=summary,
    )


def slot_wait(records: pd.DataFrame) -> pd.Series:
    """Ollama's slot wait: total minus load, prefill and decode (docs/records.md)."""
    return (records.server_total_s - records.server_load_s - records.server_prompt_eval_s
            - records.server_eval_s)


def waited_for_a_slot(traced: pd.DataFrame) -> pd.Series:
    """Per request of records joined to the emulator's trace (``with_trace``): whether it waited for another
    request's slot, i.e. another request ended (its last token) after this one had its runner and before it
    got a slot. The emulator's scheduler and engine share one event loop, so a request that took a free slot
    at once leaves no room for another to end in between."""
    ends = traced.last_token.to_numpy()
    asked = traced.runner_acquired.to_numpy()[:, None]
    got = traced.slot_acquired.to_numpy()[:, None]
    return pd.Series(((asked < ends) & (ends < got)).any(axis=1), index=traced.index)
