"""Our own ``requests.csv`` as a trace: replay a previous run, e.g. against another server.

Each recorded request is sent at its ``t_scheduled`` (an open-loop arrival's due time) or else its
``t_start``, with ``prompt_tokens`` and ``output_tokens`` as its sizes, in its ``session_id`` at its
``step``; ``t_end`` tells whether it waited for the earlier requests of its session (a chat turn did, the
documents of a batch did not). A request without token counts (it failed, or the run cancelled it) is
counted and left out. ``workload`` and ``model`` are kept for the replay to match the scenario's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from loadgen.scenario.traces.rows import BadField, Row, TraceRow, Unsized, count, csv_rows, number

COLUMNS = ("session_id", "step", "t_start", "t_end", "prompt_tokens", "output_tokens")


def read(path: Path) -> Iterator[Row]:
    """The file's requests in file order."""
    return csv_rows(path, COLUMNS, _row)


def _row(line: int, row: dict[str, str]) -> TraceRow | Unsized:
    session = row["session_id"].strip()
    if not session:
        raise BadField("session_id", "must not be empty")
    step = count(row["step"], "step")
    scheduled = row.get("t_scheduled", "").strip()
    time = number(scheduled, "t_scheduled") if scheduled else number(row["t_start"], "t_start")
    end = number(row["t_end"], "t_end")
    if not row["prompt_tokens"].strip() or not row["output_tokens"].strip():
        return Unsized(line)
    sizes = count(row["prompt_tokens"], "prompt_tokens"), count(row["output_tokens"], "output_tokens")
    return TraceRow(line, time, *sizes, session=session, step=step, end=end, workload=row.get("workload", "").strip(),
                    model=row.get("model", "").strip())
