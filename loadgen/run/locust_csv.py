"""Locust's own CSVs in the run directory, complete at the end of the run.

Locust's ``--csv`` writer rewrites its files every second and not at shutdown, so the final
``_stats.csv`` can miss the last second (reference/locust-notes.md §2.3). We run the same writer
(with full per-entry history) into the run directory, and rewrite every file once more when the run
has ended and every record has arrived.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import gevent
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

PREFIX: Final = "locust"


class LocustCsvFiles:
    """``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``, ``locust_exceptions.csv``."""

    def __init__(self, environment: Environment, run_dir: Path) -> None:
        self._writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, str(run_dir / PREFIX), full_history=True)
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._writer.stats_writer)

    def finish(self) -> None:
        """Stop the periodic writer, write the final state of every file, close them."""
        if self._greenlet is None:
            return
        self._greenlet.kill(block=True)
        self._greenlet = None
        w = self._writer
        for handle, writer, columns, rows in (
            (w.requests_csv_filehandle, w.requests_csv_writer, w.requests_csv_columns, w._requests_data_rows),
            (w.failures_csv_filehandle, w.failures_csv_writer, w.failures_columns, w._failures_data_rows),
            (w.exceptions_csv_filehandle, w.exceptions_csv_writer, w.exceptions_columns, w._exceptions_data_rows),
        ):
            handle.seek(0)
            writer.writerow(columns)
            rows(writer)
            handle.truncate()
        if w.stats_history_csv_filehandle.tell() == 0:  # the writer never got to run
            w.stats_history_csv_writer.writerow(w.stats_history_csv_columns)
        w._stats_history_data_rows(w.stats_history_csv_writer, time.time())
        w.close_files()
