"""Getting every request record from the node that made it into ``requests.csv``.

Each node (worker or local runner) collects finished records in a ``RecordSink`` that ships them in
batches through Locust's custom messages; the master (or the local runner, where ``send_message``
calls the handler directly) appends them to ``requests.csv`` through a ``RecordStore``. One path for
local and distributed runs. A sink also reports how many requests it has started and how many of
those are still in flight, so the master knows when the last record of a run has arrived.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import gevent

from analysis.schema import RECORD_COLUMNS, RequestRecord
from loadgen.run.messages import RecordsMessage

log = logging.getLogger(__name__)

#: Seconds between batches from a node: a killed worker loses at most this much.
FLUSH_INTERVAL: Final = 1.0


class RecordSink:
    """Collects one node's records and ships them in batches through ``send``."""

    def __init__(self, send: Callable[[RecordsMessage], None], run_id: str, worker: int) -> None:
        self._send = send
        self._run_id = run_id
        self._worker = worker
        self._rows: list[list[object]] = []
        self._greenlet: gevent.Greenlet | None = None
        self.sent = 0
        self.recorded = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.recorded

    def request_started(self) -> None:
        self.sent += 1

    def add(self, record: RequestRecord) -> None:
        self._rows.append(record.to_row())
        self.recorded += 1

    def start(self) -> None:
        """Ship a batch every ``FLUSH_INTERVAL`` seconds until ``close``."""
        self._greenlet = gevent.spawn(self._flush_forever)

    def close(self) -> None:
        """Stop the periodic shipping and ship what is left, marked as the node's final batch."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        self.flush(final=True)

    def flush(self, final: bool = False, token: int = 0) -> None:
        """Ship what has been recorded; ``token`` answers the master's FLUSH request (sent even if empty)."""
        rows, self._rows = self._rows, []
        if not rows and not final and not token:
            return
        message = RecordsMessage(
            run_id=self._run_id,
            worker=self._worker,
            rows=rows,
            sent=self.sent,
            in_flight=self.in_flight,
            final=final,
            flush_token=token,
        )
        try:
            self._send(message)
        except Exception:  # the master is gone: keep the rows for the next try rather than drop them
            self._rows[:0] = rows
            log.exception("could not ship %d records to the master; will retry", len(rows))

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL)
            self.flush()


@dataclass(slots=True)
class WorkerTally:
    """What the master knows of one node's records."""

    sent: int = 0  # requests the node says it started
    received: int = 0  # records that arrived from it
    in_flight: int = 0  # requests the node had not yet recorded at its last batch
    final: bool = False  # its final batch arrived
    last_seen: float = 0.0


class RecordStore:
    """Appends record batches to ``requests.csv``; flushed after every batch, never rewritten."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._file: TextIO | None = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(RECORD_COLUMNS)
        self._file.flush()
        self.workers: dict[int, WorkerTally] = {}

    def write_batch(self, message: RecordsMessage) -> None:
        """Append one batch and update its node's tally. Batches of another run are ignored."""
        if message["run_id"] != self.run_id or self._file is None:
            return
        rows = message["rows"]
        if rows:
            self._writer.writerows(rows)
            self._file.flush()
        tally = self.workers.setdefault(message["worker"], WorkerTally())
        tally.received += len(rows)
        tally.sent = message["sent"]
        tally.in_flight = message["in_flight"]
        tally.final = tally.final or message["final"]
        tally.last_seen = time.time()

    @property
    def received(self) -> int:
        return sum(t.received for t in self.workers.values())

    def in_flight(self, workers: set[int] | None = None) -> int:
        """Requests still in flight on the given nodes (all nodes heard from, by default)."""
        return sum(t.in_flight for w, t in self.workers.items() if workers is None or w in workers)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
