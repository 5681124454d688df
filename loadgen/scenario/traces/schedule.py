"""A trace as a replay schedule: its requests in the time window, capped, in time order, each with the
second it is due (from the window's start, on the trace's clock), its sizes and its session.

The file is streamed twice: once for the trace's first time (a ``requests.csv`` is not in time order) and
the counts, once to keep the requests in the window (``[start, end)`` seconds from the trace's first
request), at most ``max_requests`` of them: the earliest.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from loadgen.scenario.errors import FieldProblem, file_problems
from loadgen.scenario.jsonstream import JsonFileError
from loadgen.scenario.spec import Spec
from loadgen.scenario.traces import azure, mooncake, requests_csv
from loadgen.scenario.traces.rows import BadRow, Row, TraceFileError, TraceRow, Unsized

#: The most requests a schedule holds: every worker gets a copy of it.
MAX_REPLAY_REQUESTS = 100_000

Format = Literal["requests_csv", "azure", "mooncake"]
READERS: dict[str, Callable[[Path], Iterator[Row]]] = {
    "requests_csv": requests_csv.read,
    "azure": azure.read,
    "mooncake": mooncake.read,
}


class TraceRequest(NamedTuple):
    """One request of the schedule."""

    at: float  # seconds from the replay's start, on the trace's clock (the node divides by speed)
    session: int  # index into the schedule's sessions
    step: int
    input_tokens: int
    output_tokens: int
    after: bool  # it waited for the earlier requests of its session in the recording: it waits for them again
    blocks: tuple[int, ...]  # prefix blocks (Mooncake hash_ids); () for the session's own text


class TraceSession(NamedTuple):
    """A session of the schedule: its key in the trace, and its recorded workload and model ("" for none)."""

    key: str
    workload: str
    model: str


class TraceSummary(Spec):
    """What the read found and kept."""

    rows: int  # requests in the file
    bad: int  # malformed rows skipped (skip_bad)
    unsized: int  # recorded requests without token counts (failed or cancelled): not replayed
    outside_window: int
    over_cap: int  # in the window, but after the first max_requests
    kept: int
    sessions: int
    span_s: float  # from the replay's start to its last request, on the trace's clock

    def __str__(self) -> str:
        return (f"{self.kept} of {self.rows} requests kept ({self.outside_window} outside the window, "
                f"{self.over_cap} over max_requests, {self.bad} bad rows skipped, {self.unsized} without sizes)")


@dataclass(frozen=True, slots=True)
class Schedule:
    requests: tuple[TraceRequest, ...]  # in time order
    sessions: tuple[TraceSession, ...]  # in order of their first request
    summary: TraceSummary


class BadRowError(ValueError):
    """A malformed row, with ``skip_bad`` off."""

    def __init__(self, row: BadRow) -> None:
        super().__init__(str(row))
        self.row = row


def share(requests: Iterable[TraceRequest], place: int, nodes: int) -> list[int]:
    """The indexes of the requests node ``place`` of ``nodes`` sends: those of the sessions whose index
    modulo ``nodes`` is ``place``. Every request falls to exactly one node, a session's all to the same."""
    return [index for index, request in enumerate(requests) if request.session % nodes == place]


def read_schedule(path: Path, format: Format, start: float, end: float | None, max_requests: int | None,
                  skip_bad: bool) -> Schedule:
    """The schedule of the trace file at ``path``; raises ``FieldProblem`` (on ``file`` for a problem of
    the file, naming its line and field)."""
    read = READERS[format]
    with file_problems(path, "trace file"):
        try:
            return build_schedule(lambda: read(path), start, end, max_requests, skip_bad, str(path))
        except BadRowError as err:
            raise FieldProblem(f"{path}:{err.row.line}: {err.row}", "file") from None
        except (TraceFileError, JsonFileError) as err:
            raise FieldProblem(f"{path}:{err.line}: {err.message}", "file") from None


def build_schedule(rows: Callable[[], Iterable[Row]], start: float, end: float | None, max_requests: int | None,
                   skip_bad: bool, file: str = "the trace") -> Schedule:
    """The schedule of the rows ``rows()`` yields (called twice). Raises ``BadRowError`` for a bad row
    (unless ``skip_bad``), ``FieldProblem`` for a trace with nothing to replay in the window or too much."""
    first, last, total, bad, unsized = math.inf, -math.inf, 0, 0, 0
    for row in rows():
        if isinstance(row, BadRow):
            if not skip_bad:
                raise BadRowError(row)
            bad += 1
        elif isinstance(row, Unsized):
            unsized += 1
        else:
            total += 1
            first, last = min(first, row.time), max(last, row.time)
    if not total:
        raise FieldProblem(f"{file}: has no request to replay ({bad} bad rows skipped, {unsized} without sizes)",
                           "file")
    kept, in_window = _in_window(rows(), first + start, math.inf if end is None else first + end, max_requests)
    if not kept:
        raise FieldProblem(f"no request of {file} is in it: its {total} requests span {last - first:g} s from the "
                           "first", "window")
    requests, sessions = _requests(kept, first + start)
    summary = TraceSummary(rows=total, bad=bad, unsized=unsized, outside_window=total - in_window,
                           over_cap=in_window - len(kept), kept=len(kept), sessions=len(sessions),
                           span_s=requests[-1].at)
    return Schedule(requests, sessions, summary)


def _in_window(rows: Iterable[Row], lo: float, hi: float, cap: int | None) -> tuple[list[TraceRow], int]:
    """The earliest ``cap`` requests in ``[lo, hi)`` in time order (then step order), and how many were in it."""
    heap: list[tuple[float, int, TraceRow]] = []  # the latest kept on top (negated keys)
    count = 0
    for row in rows:
        if not isinstance(row, TraceRow) or not lo <= row.time < hi:
            continue
        count += 1
        item = (-row.time, -row.line, row)
        if cap is None or len(heap) < cap:
            heapq.heappush(heap, item)
            if len(heap) > MAX_REPLAY_REQUESTS:
                raise FieldProblem(f"the window holds more than {MAX_REPLAY_REQUESTS} requests, and every worker "
                                   "gets a copy of the schedule: set max_requests, or a shorter window", "max_requests")
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return sorted((row for _, _, row in heap), key=lambda row: (row.time, row.step, row.line)), count


def _requests(kept: list[TraceRow], origin: float) -> tuple[tuple[TraceRequest, ...], tuple[TraceSession, ...]]:
    """The kept rows as requests due at ``time - origin``, and their sessions in order of first request."""
    index: dict[str, int] = {}
    sessions: list[TraceSession] = []
    first_end: dict[int, float] = {}  # per session, the earliest end of its requests so far (-inf: unknown)
    requests = []
    for row in kept:
        key = row.session or f"line{row.line}"
        session = index.setdefault(key, len(sessions))
        if session == len(sessions):
            sessions.append(TraceSession(key, row.workload, row.model))
        after = first_end.get(session, math.inf) <= row.time
        first_end[session] = min(first_end.get(session, math.inf), -math.inf if row.end is None else row.end)
        requests.append(TraceRequest(row.time - origin, session, row.step, row.input_tokens, row.output_tokens,
                                     after, row.blocks))
    return tuple(requests), tuple(sessions)

