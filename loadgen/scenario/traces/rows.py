"""What a trace reader yields for each line of a trace file: a request, a bad row, or a recorded request
too incomplete to replay; and the parsing of the fields the formats share.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from loadgen.scenario.errors import one_of, show


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One recorded request: when it was sent (seconds on the trace's own clock) and its sizes; where the
    format has them, its session and step, when it ended, its prefix blocks, workload and model."""

    line: int
    time: float
    input_tokens: int
    output_tokens: int
    session: str = ""  # "" for a request that is a session of its own
    step: int = 0
    end: float | None = None
    blocks: tuple[int, ...] = ()  # Mooncake hash_ids: prefix blocks of BLOCK_TOKENS tokens
    workload: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A malformed line: which field is wrong, and how."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True, slots=True)
class Unsized:
    """A recorded request without token counts (it failed, or the run cancelled it): nothing to size it by."""

    line: int


Row = TraceRow | BadRow | Unsized
T = TypeVar("T")


class TraceFileError(ValueError):
    """A problem that ends the read (a header without a needed column)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class BadField(ValueError):
    """A field that cannot be read; the reader makes it a ``BadRow``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def number(value: object, field: str) -> float:
    """A finite number, written as text (CSV) or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadField(field, f"must be a number, got {show(value)}")
    try:
        result = float(value)
    except ValueError:
        raise BadField(field, f"must be a number, got {show(value)}") from None
    if not math.isfinite(result):
        raise BadField(field, f"must be a finite number, got {show(value)}")
    return result


def count(value: object, field: str) -> int:
    """A whole number >= 0 (``12`` or ``12.0``), written as text (CSV) or a JSON number."""
    result = number(value, field) if not isinstance(value, int) or isinstance(value, bool) else value
    if result < 0 or result != int(result):
        raise BadField(field, f"must be a whole number >= 0, got {show(value)}")
    return int(result)


def parsed(line: int, parse: Callable[[int, T], TraceRow | Unsized], value: T) -> Row:
    """``parse(line, value)``, or the ``BadRow`` its ``BadField`` describes."""
    try:
        return parse(line, value)
    except BadField as bad:
        return BadRow(line, bad.field, bad.message)


def csv_rows(path: Path, columns: Sequence[str], parse: Callable[[int, dict[str, str]], TraceRow | Unsized]
             ) -> Iterator[Row]:
    """Each row of a CSV file whose header names at least ``columns``, as ``parse(line, {column: cell})``
    makes it (blank lines skipped). Raises ``TraceFileError`` for a header without one of ``columns`` or
    text that is not CSV."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            raise TraceFileError(1, f"is empty: expected a header with {one_of(columns)}")
        missing = [column for column in columns if column not in header]
        if missing:
            raise TraceFileError(1, f"the header has no column {missing[0]!r} (it needs {one_of(columns)}, "
                                    f"got {one_of(header)})")
        line = reader.line_num + 1
        try:
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    if len(cells) != len(header):
                        yield BadRow(line, "", f"has {len(cells)} fields, the header {len(header)}")
                    else:
                        yield parsed(line, parse, dict(zip(header, cells, strict=True)))
                line = reader.line_num + 1
        except csv.Error as err:
            raise TraceFileError(line, f"not readable as CSV ({err})") from None
