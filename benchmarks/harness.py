"""Shared pieces of the benchmark scripts: servers on loopback, CPU from /proc, the emulator's trace
joined to our records, percentiles and Markdown tables. Standard library plus psutil (a Locust dependency).

The TTFT error of one request is the client's ``t_first_token`` minus the emulator's ``first_chunk``
(when it wrote the first content chunk): both epoch seconds on this machine's clock, joined on
``X-Request-Id`` = ``<session_id>/<step>``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import quantiles
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on (http://[^\s:]+:(\d+))")
START_TIMEOUT_S = 180.0  # llama.cpp assembles its 253 MB model on first use


@dataclass
class Server:
    """A server subprocess on loopback: ``url``, ``port``, ``proc``."""

    proc: subprocess.Popen[str]
    url: str
    port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def clean_env() -> dict[str, str]:
    """This environment without ``OLLAMA_*`` (the emulator would read them), with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def start_server(argv: Sequence[str], timeout: float = START_TIMEOUT_S) -> Server:
    """Start a server that prints ``... listening on http://HOST:PORT`` once ready (emulator, llama.cpp)."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=clean_env(), cwd=REPO)  # fmt: skip
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if match := LISTENING.search(line):
            return Server(proc, match.group(1), int(match.group(2)))
    proc.kill()
    raise SystemExit(f"server did not start: {' '.join(argv)}")


def start_emulator(*flags: str) -> Server:
    """``python -m emulator`` on a free loopback port with ``flags``."""
    return start_server([sys.executable, "-m", "emulator", "--host", "127.0.0.1:0", *flags])


def emulator_flags(slots: int, tps: float, trace: Path | None = None) -> list[str]:
    """The emulator as a benchmark target: ``slots`` slots, every stream decoding at ``tps`` tok/s whatever
    the batch (no contention), quick prefill, no jitter, and answers of 30-50 tokens (3-5 s at 10 tok/s)."""
    flags = ["--preset", "fast", "--num-parallel", str(slots), "--seed", "1", "--tune", f"solo_tps={tps}",
             "--tune", "contention=0", "--tune", "prefill_tps=20000", "--tune", "jitter=0",
             "--tune", "min_output=30", "--tune", "max_output=50", "--keep-alive", "-1"]  # fmt: skip
    return flags + (["--trace-file", str(trace)] if trace else [])


def start_llamacpp(slots: int) -> Server:
    """The real llama.cpp server (Gemma 3 270M, the ``[real]`` extra) with ``slots`` slots on 2 threads."""
    return start_server([sys.executable, "-m", "locustfiles._llamacpp", "--port", "0", "--slots", str(slots)])


# --- CPU from /proc -------------------------------------------------------------------------------
def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process so far."""
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[pid] = t.user + t.system
    return out


@contextmanager
def cpu_window(pids: Iterable[int]) -> Iterator[dict[int, float]]:
    """Measure each process's CPU share (percent of one core) over the ``with`` block; filled on exit."""
    pids = list(pids)
    before, t0 = cpu_seconds(pids), time.monotonic()
    shares: dict[int, float] = {}
    yield shares
    after, t1 = cpu_seconds(pids), time.monotonic()
    shares.update({pid: (after[pid] - before[pid]) / (t1 - t0) * 100 for pid in after if pid in before})


# --- traces and records ---------------------------------------------------------------------------
def read_trace(path: Path) -> dict[str, dict[str, Any]]:
    """The emulator's trace file by ``request_id``."""
    rows = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows[row["request_id"]] = row
    return rows


def read_records(path: Path) -> list[dict[str, str]]:
    """``requests.csv`` rows as strings (empty cell = no value)."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def started_in(records: Iterable[dict[str, str]], begin: float, end: float) -> list[dict[str, str]]:
    """Successful requests sent within ``[begin, end)`` (epoch seconds)."""
    return [r for r in records if not r["error"] and begin <= float(r["t_start"]) < end]


def window_rates(records: Iterable[dict[str, str]], begin: float, end: float) -> tuple[float, float, float]:
    """Over ``[begin, end]``: requests in flight on average, completions/s and output tokens/s (each
    request's tokens spread evenly over its duration)."""
    busy = completed = tokens = 0.0
    for r in records:
        t0, t1 = float(r["t_start"]), float(r["t_end"])
        overlap = min(t1, end) - max(t0, begin)
        if overlap <= 0:
            continue
        busy += overlap
        completed += begin <= t1 <= end and not r["error"]
        tokens += int(r["output_tokens"] or 0) * overlap / max(t1 - t0, 1e-9)
    span = end - begin
    return busy / span, completed / span, tokens / span


def ttft_errors_ms(records: Iterable[dict[str, str]], trace: dict[str, dict[str, Any]]) -> list[float]:
    """Client ``t_first_token`` minus the emulator's ``first_chunk``, in ms, for every record in the trace."""
    errors = []
    for r in records:
        row = trace.get(f"{r['session_id']}/{r['step']}")
        if row and row.get("first_chunk") and r["t_first_token"]:
            errors.append((float(r["t_first_token"]) - row["first_chunk"]) * 1000)
    return errors


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (inclusive method); NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


# --- output ---------------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line: cores, CPU model, RAM, Python and Locust versions."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    try:
        from importlib.metadata import version

        locust = version("locust")
    except Exception:
        locust = "absent"
    return (f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, Locust {locust}, load average {os.getloadavg()[0]:.2f} at start")
