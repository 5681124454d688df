"""Read a run directory, or a plain Locust ``--csv`` prefix, into a ``Run``. The only module that reads files.

Tolerant where a run can legitimately be imperfect (a killed master leaves a truncated last line; optional
files may be missing or empty) and strict where the input is not what it claims to be (wrong columns),
which raises ``InputError`` with a one-line message.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import locust_csv
from analysis.capacity_result import parse_capacity
from analysis.errors import InputError
from analysis.run import LocustData, Run, make_run
from analysis.schema import (
    BOOL_COLUMNS,
    CAPACITY_FILE,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    RECORD_COLUMNS,
    REQUESTS_FILE,
    RUN_FILE,
    SERVER_METRICS_FILE,
    STAGES_FILE,
)

REQUIRED_RECORD_COLUMNS = ("workload", "host", "model", "t_start", "t_end", "status", "error")
CATEGORY_COLUMNS = ("run_id", "workload", "kind", "host", "api", "endpoint", "model", "error", "done_reason")
NUMERIC_COLUMNS = FLOAT_COLUMNS | INT_COLUMNS | BOOL_COLUMNS
LOCUST_SUFFIXES = {"stats": "_stats.csv", "history": "_stats_history.csv", "failures": "_failures.csv",
                   "exceptions": "_exceptions.csv"}
LOCUST_REQUIRED = {"stats": locust_csv.STATS_COLUMNS, "history": locust_csv.HISTORY_COLUMNS,
                   "failures": locust_csv.FAILURES_COLUMNS, "exceptions": locust_csv.EXCEPTIONS_COLUMNS}


def load_run(path: str | Path) -> Run:
    """Load a run directory, a directory holding one set of Locust CSVs, or a Locust ``--csv`` prefix."""
    target = Path(path)
    if target.is_dir():
        if any((target / f).exists() for f in (REQUESTS_FILE, RUN_FILE, STAGES_FILE)):
            return _load_run_dir(target)
        prefixes = sorted(str(p)[: -len("_stats.csv")] for p in target.glob("*_stats.csv"))
        if len(prefixes) > 1:
            raise InputError(f"{target}: several Locust CSV sets ({', '.join(Path(p).name for p in prefixes)}); "
                             "pass one prefix")
        if not prefixes:
            raise InputError(f"{target}: not a run directory (no {REQUESTS_FILE}, no Locust *_stats.csv)")
        return _load_locust_prefix(Path(prefixes[0]), target)
    if target.name.endswith("_stats.csv"):
        target = target.with_name(target.name[: -len("_stats.csv")])
    if Path(f"{target}_stats.csv").exists():
        return _load_locust_prefix(target, target.parent)
    raise InputError(f"{path}: no such run directory or Locust CSV prefix")


def _load_run_dir(directory: Path) -> Run:
    notes: list[str] = []
    records = _read_records(directory / REQUESTS_FILE, notes)
    stages = _read_table(directory / STAGES_FILE, notes, required=("stage", "t_begin", "t_end"), quiet=True)
    if stages is None:
        notes.append(f"{STAGES_FILE} missing or empty (no stage ended): the whole run is treated as one stage")
    info = _read_info(directory / RUN_FILE, notes)
    server = _read_table(directory / SERVER_METRICS_FILE, notes, required=("t", "host", "busy"), quiet=True)
    locust = _read_locust(directory / "locust", notes, optional=True)
    if records is None and locust.stats is None:
        raise InputError(f"{directory}: no request records ({REQUESTS_FILE} missing or empty) and no Locust CSVs")
    capacity = _read_capacity(directory / CAPACITY_FILE)
    return make_run(directory.name, records, stages, info=info, server_metrics=server, capacity=capacity,
                    locust=locust, notes=notes, path=directory)


def _load_locust_prefix(prefix: Path, directory: Path) -> Run:
    notes = ["plain Locust CSVs without per-request records: exact percentiles, slot wait and slot inference "
             "need requests.csv"]
    locust = _read_locust(prefix, notes, optional=False)
    if locust.stats is None:
        raise InputError(f"{prefix}_stats.csv is empty")
    return make_run(prefix.name, None, None, locust=locust, notes=notes, path=directory)


def _read_locust(prefix: Path, notes: list[str], optional: bool) -> LocustData:
    """Locust's CSVs. Beside the records (``optional``) a damaged one (a master killed while Locust rewrote
    it) is noted and left out rather than failing the whole report."""
    tables: dict[str, pd.DataFrame | None] = {}
    for kind, suffix in LOCUST_SUFFIXES.items():
        path = Path(f"{prefix}{suffix}")
        try:
            frame = _read_table(path, notes, required=(), optional=optional or kind != "stats", raw=True, quiet=True)
            if frame is not None:
                locust_csv.check_columns(frame, LOCUST_REQUIRED[kind], str(path))
        except InputError as exc:
            if not optional:
                raise
            notes.append(f"{exc}; left out")
            frame = None
        tables[kind] = frame
    return LocustData(**tables)


def _read_info(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.exists():
        notes.append(f"{RUN_FILE} missing: the target, configured slots and SLOs are unknown")
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        notes.append(f"{RUN_FILE} unreadable ({exc}); ignored")
        return {}
    if not isinstance(info, dict):
        notes.append(f"{RUN_FILE} is not a JSON object; ignored")
        return {}
    if info.get("complete") is False:
        notes.append("run.json says the run did not end gracefully (complete: false): the last records may be missing")
    notes.extend(_worker_notes(info))
    return info


def _read_capacity(path: Path) -> dict[str, Any] | None:
    """A capacity search's ``capacity.json``, checked against its format; None in other runs. Unlike run.json
    it is no aside: it holds the run's answer and its CI gate, so a damaged one stops the report (exit 2)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        parse_capacity(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a capacity search's answer: {exc}") from None
    assert isinstance(data, dict)  # parse_capacity took it
    return data


def _worker_notes(info: dict[str, Any]) -> list[str]:
    """What ``run.json`` says was lost on the workers: ones that vanished, requests without a record."""
    notes = []
    started = info.get("started_at")
    for worker in info.get("workers") or []:
        if not isinstance(worker, dict):
            continue
        name = f"worker {worker.get('index')} ({worker.get('hostname', '?')})"
        vanished = worker.get("vanished_at")
        if isinstance(vanished, (int, float)):
            when = f"{vanished - started:.0f} s into the run" if isinstance(started, (int, float)) else "mid-run"
            notes.append(f"{name} vanished {when}: its requests in flight then, and up to its last second of "
                         "records, are missing")
        sent, received = worker.get("requests_sent"), worker.get("records_received")
        if isinstance(sent, int) and isinstance(received, int) and sent > received:
            notes.append(f"{name}: {sent - received} of the {sent} requests it sent have no record")
    return notes


def _complete_lines(path: Path, notes: list[str]) -> str | Path:
    """``path`` itself, or its text up to the last newline when a killed writer left a partial last line."""
    with path.open("rb") as handle:
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 1))
        if size == 0 or handle.read(1) == b"\n":
            return path
        handle.seek(0)
        data = handle.read()
    cut = data.rfind(b"\n") + 1
    if cut:
        notes.append(f"{path.name}: dropped a truncated last line (the writer was stopped mid-line)")
    return _decode(data[:cut] if cut else data, path)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _header(source: str | Path, path: Path) -> list[str]:
    if isinstance(source, str):
        line = source.partition("\n")[0]
    else:
        with source.open("rb") as handle:
            line = _decode(handle.readline(), path)
    return next(csv.reader([line]), [])


def _read_table(
    path: Path,
    notes: list[str],
    required: tuple[str, ...],
    optional: bool = True,
    raw: bool = False,
    dtype: dict[str, Any] | None = None,
    quiet: bool = False,
) -> pd.DataFrame | None:
    """Read one CSV; ``None`` when missing or empty, with a note unless ``quiet`` (the caller says what the
    absence means, or it is normal, as for an optional file or Locust's empty failures table).

    ``dtype`` columns of type float64 that hold text are read again as text and coerced, noting how many
    cells were lost; ``raw`` keeps Locust's "N/A" cells as text instead of missing values.
    """
    if not path.exists():
        if not optional:
            raise InputError(f"{path}: missing")
        if not quiet:
            notes.append(f"{path.name} missing")
        return None
    source = _complete_lines(path, notes)
    columns = _header(source, path)
    if not columns:
        if not quiet:
            notes.append(f"{path.name} is empty")
        return None
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)} (has: {', '.join(columns[:12])})")
    dtype = {c: t for c, t in (dtype or {}).items() if c in columns}
    options: dict[str, Any] = {} if raw else {"keep_default_na": False, "na_values": [""]}
    try:
        frame = _parse(source, path, notes, dtype, options)
    except ValueError:
        numeric = [c for c, t in dtype.items() if t == "float64"]
        frame = _parse(source, path, notes, {c: t for c, t in dtype.items() if c not in numeric}, options)
        for column in numeric:
            before = int(frame[column].notna().sum())
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
            if bad := before - int(frame[column].notna().sum()):
                notes.append(f"{path.name}: {bad} non-numeric cells in {column} treated as missing")
    if frame.empty:
        if not quiet:
            notes.append(f"{path.name} has a header but no rows")
        return None
    return frame


def _parse(
    source: str | Path, path: Path, notes: list[str], dtype: dict[str, Any], options: dict[str, Any]
) -> pd.DataFrame:
    def read(**extra: Any) -> pd.DataFrame:
        reader = io.StringIO(source) if isinstance(source, str) else source
        return pd.read_csv(reader, dtype=dtype or None, **options, **extra)

    try:
        try:
            return read()
        except pd.errors.ParserError:
            try:
                frame = read(on_bad_lines="skip")
            except pd.errors.ParserError as exc:
                raise InputError(f"{path}: not parseable as CSV ({str(exc).strip().splitlines()[-1]})") from None
            notes.append(f"{path.name}: skipped malformed lines (wrong number of fields)")
            return frame
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def records_from_rows(rows: list[list[Any]]) -> pd.DataFrame:
    """Records as the load generator ships them (``RequestRecord.to_row()`` lists, ``""`` for none) with the
    dtypes ``requests.csv`` is read with: the same frame a finished run's file gives."""
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce").astype("float64")
    frame["error"] = frame["error"].astype("string")
    return frame


def _read_records(path: Path, notes: list[str]) -> pd.DataFrame | None:
    """``requests.csv`` with schema dtypes: floats for numbers, categories for low-cardinality text."""
    dtype: dict[str, Any] = {c: "float64" for c in NUMERIC_COLUMNS}
    dtype |= {c: "category" for c in CATEGORY_COLUMNS}
    dtype |= {c: "object" for c in ("session_id", "error_detail")}
    frame = _read_table(path, notes, required=REQUIRED_RECORD_COLUMNS, dtype=dtype)
    if frame is None:
        return None
    absent = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if absent:
        notes.append(f"{path.name} lacks columns {', '.join(absent)}; the metrics that need them are left out")
        for column in absent:
            frame[column] = float("nan") if column in NUMERIC_COLUMNS else pd.Categorical([None] * len(frame))
    unusable = frame["t_start"].isna() | frame["t_end"].isna()
    if unusable.any():
        notes.append(f"{path.name}: {int(unusable.sum())} rows without t_start or t_end dropped")
        frame = frame[~unusable]
    return frame if not frame.empty else None
