"""Crashes: a worker or the master killed with SIGKILL mid-run, and the analysis of what they leave.

A master with two forked workers (``--processes 2``, on a loopback port of its own) drives an emulator
whose trace says which requests the server finished, so the records the master kept can be checked against them.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.schema import RECORD_COLUMNS
from loadgen.run.records import FLUSH_INTERVAL
from tests.helpers import (
    REPO,
    EmulatorProcess,
    assert_records_reconcile,
    forked_workers,
    live_records,
    poll,
    processes_args,
    read_run,
    read_trace,
    request_ids,
)

pytestmark = pytest.mark.integration


def scenario(emu: EmulatorProcess, duration: str) -> dict[str, Any]:
    return {
        "name": "crash",
        "model": "llama3.2:latest",
        "hosts": [{"name": "emu", "url": emu.url}],
        "options": {"num_predict": 8, "temperature": 0},
        "workloads": [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0.05}],
        "load": {"users": 4, "duration": duration, "stop_timeout": "20s"},
    }


def batches(records: pd.DataFrame) -> pd.DataFrame:
    """The batches of records the master appended to ``requests.csv``, as far as its rows show: each run of rows
    from one worker (one batch, or several with none from another worker between), its ``worker`` and the
    ``end`` of its last request (a batch leaves just after; it holds every request of the worker that ended
    before)."""
    block = (records.worker != records.worker.shift()).cumsum().rename("batch")
    return records.groupby(block).agg(worker=("worker", "first"), end=("t_end", "max"))


def analyse(run_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``python -m analysis report`` on a run directory, and the summary it wrote."""
    result = subprocess.run([sys.executable, "-m", "analysis", "report", str(run_dir)], cwd=REPO, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result, json.loads((run_dir / "summary.json").read_text())


def test_a_worker_killed_mid_run_loses_only_its_last_second(
    emulator_factory: Callable[..., EmulatorProcess], start_locust: Callable[..., tuple], tmp_path: Path
) -> None:
    trace_file = tmp_path / "trace.jsonl"
    emu = emulator_factory(preset="fast", num_parallel=4, trace_file=trace_file)
    proc, results = start_locust(scenario(emu, duration="12s"), *processes_args(2))
    victim, _ = forked_workers(proc.pid, 2)
    poll(lambda: batches(live_records(results)).worker.value_counts().reindex([0, 1]).min() >= 3,
         "three batches of records from each worker")
    t_kill = time.time()
    victim.kill()
    t_killed = time.time()
    output, _ = proc.communicate(timeout=120)  # the master carries on and ends the run on its own
    emu.stop()
    run = read_run(results, proc.returncode, output)

    assert run.returncode in (0, 1), output
    assert_records_reconcile(run)  # every record that reached the master is in requests.csv, once
    (dead,) = [w for w in run.info["workers"] if w["vanished_at"] is not None]
    (alive,) = [w for w in run.info["workers"] if w["vanished_at"] is None]
    assert dead["vanished_at"] > t_kill
    records = run.records
    mine = records[records.worker == dead["index"]]
    assert (mine.t_end < t_killed).all()
    assert (records[records.worker == alive["index"]].t_start > dead["vanished_at"]).any()  # the run went on

    # What the dead worker lost: what it had not shipped. Its batches leave in the order its requests end, each
    # with all that ended before it, and say how many requests it had started: so a request the server saw
    # before the last shipped record had ended was in flight when that last batch left, and run.json counts
    # those (started, no record). Anything more lost would be a batch lost on the way.
    trace = read_trace(trace_file)
    served = trace[(trace.status == 200) & trace.request_id.str.startswith(f"{dead['index']}-")]
    lost = served[~served.request_id.isin(request_ids(records))]
    assert len(lost) < len(served)
    in_flight_at_last_batch = dead["requests_sent"] - dead["records_received"]
    lost_before_it = lost[lost.received <= mine.t_end.max()]
    assert len(lost_before_it) <= in_flight_at_last_batch, (in_flight_at_last_batch, lost_before_it)
    # And what it had not shipped is its last batch interval's worth: the batches came about every
    # FLUSH_INTERVAL, and its last one left less than two of the longest gaps between them before the kill.
    gaps = batches(records)[lambda b: b.end < t_kill].groupby("worker").end.diff().dropna()
    assert gaps.median() < 2 * FLUSH_INTERVAL, gaps
    assert t_kill - mine.t_end.max() < 2 * gaps.max(), (t_kill, mine.t_end.max(), gaps.max())

    _, summary = analyse(run.dir)
    notes = [note for note in summary["notes"] if f"worker {dead['index']}" in note]
    assert any("vanished" in note for note in notes), summary["notes"]
    if (in_flight := dead["requests_sent"] - dead["records_received"]) > 0:
        assert any(f"{in_flight} of the {dead['requests_sent']} requests it sent have no record" in note
                   for note in notes), notes


def test_a_master_killed_mid_run_leaves_a_readable_run(
    emulator_factory: Callable[..., EmulatorProcess], start_locust: Callable[..., tuple]
) -> None:
    emu = emulator_factory(preset="fast", num_parallel=4)
    proc, results = start_locust(scenario(emu, duration="5m"), *processes_args(2))
    poll(lambda: len(live_records(results)) >= 40, "records to arrive")
    os.kill(proc.pid, signal.SIGKILL)  # its workers are left behind; the fixture kills them
    proc.wait()
    (run_dir,) = results.iterdir()

    # requests.csv is valid CSV up to its last complete line (a cut last line is possible).
    text = (run_dir / "requests.csv").read_text()
    rows = list(csv.reader(text[: text.rfind("\n") + 1].splitlines()))
    assert rows[0] == list(RECORD_COLUMNS) and len(rows) > 40
    assert all(len(row) == len(RECORD_COLUMNS) for row in rows)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] is False and info["ended_at"] is None

    result, summary = analyse(run_dir)
    assert summary["requests"]["total"] == len(rows) - 1
    notes = " | ".join(summary["notes"])
    assert "did not end gracefully" in notes and "no stage ended" in notes
    assert "Data quality" in (run_dir / "report.md").read_text()
