"""What the reliability tests check on every run: the counts reconcile; and the emulator's trace."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.helpers import LocustRun


def assert_records_reconcile(run: LocustRun) -> None:
    """The run ended gracefully; every record the master received is in requests.csv, once; and every
    worker that lasted to the end had a record for each request it sent (one that vanished had sent, at
    its last report, its records so far plus the requests then in flight, which are lost)."""
    records = run.records
    assert run.info["complete"], run.output
    for worker in run.info["workers"]:
        rows = int((records.worker == worker["index"]).sum())
        assert worker["records_received"] == rows, worker
        if worker["vanished_at"] is None:
            assert worker["requests_sent"] == rows, worker
        else:
            assert worker["requests_sent"] >= rows, worker
    assert sum(w["records_received"] for w in run.info["workers"]) == len(records)
    assert not records.duplicated(["session_id", "step"]).any()


def request_ids(records: pd.DataFrame) -> pd.Series:
    """Each record's ``X-Request-Id`` (``<session_id>/<step>``), as the emulator's trace has it."""
    return records.session_id + "/" + records.step.astype(str)


def read_trace(path: Path) -> pd.DataFrame:
    """The emulator's trace of the load's requests (the start's probes carry no request id)."""
    trace = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    return trace[trace.request_id != ""]
