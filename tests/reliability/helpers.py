"""The emulator's trace, joined to the records by request id."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def request_ids(records: pd.DataFrame) -> pd.Series:
    """Each record's ``X-Request-Id`` (``<session_id>/<step>``), as the emulator's trace has it."""
    return records.session_id + "/" + records.step.astype(str)


def read_trace(path: Path) -> pd.DataFrame:
    """The emulator's trace of the load's requests (the start's probes carry no request id)."""
    trace = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    return trace[trace.request_id != ""]
