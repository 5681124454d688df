"""The Azure LLM inference trace (Azure/AzurePublicDataset): ``TIMESTAMP,ContextTokens,GeneratedTokens``.

``TIMESTAMP`` is an absolute time: the 2023 files write ``2023-11-16 18:17:03.9799600`` (seven fractional
digits, no zone), the 2024 ones ``2024-05-10 00:00:00.009930+00:00``, some without a fraction. A time
without a zone is read as UTC (only the gaps between requests matter). Every request is a session of its
own: the trace has none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from loadgen.scenario.errors import show
from loadgen.scenario.traces.rows import BadField, Row, TraceRow, count, csv_rows

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\s*(?:(Z)|([+-])(\d\d):?(\d\d))?"
)


def read(path: Path) -> Iterator[Row]:
    """The file's requests in file order."""
    return csv_rows(path, COLUMNS, _row)


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of a ``TIMESTAMP`` (see the module's docstring); ``ValueError`` otherwise."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"must be a time like 2023-11-16 18:17:03.9799600 or 2024-05-10 00:00:00.009930+00:00, "
                         f"got {show(text)}")
    year, month, day, hour, minute, second, fraction, utc, sign, zone_h, zone_m = match.groups()
    try:
        when = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC)
    except ValueError as err:
        raise ValueError(f"is not a valid time ({err}), got {show(text)}") from None
    offset = 0 if utc or sign is None else (int(zone_h) * 3600 + int(zone_m) * 60) * (1 if sign == "+" else -1)
    return when.timestamp() - offset + (float(f"0.{fraction}") if fraction else 0.0)


def _row(line: int, row: dict[str, str]) -> TraceRow:
    try:
        time = parse_timestamp(row["TIMESTAMP"])
    except ValueError as err:
        raise BadField("TIMESTAMP", str(err)) from None
    return TraceRow(line, time, count(row["ContextTokens"], "ContextTokens"),
                    count(row["GeneratedTokens"], "GeneratedTokens"))
