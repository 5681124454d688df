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
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import quantiles
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import free_port, locust_command, processes_args, stop_process  # noqa: E402

LISTENING = re.compile(r"listening on (http://[^\s:]+:(\d+))")
START_TIMEOUT_S = 180.0  # llama.cpp assembles its 253 MB model on first use


@dataclass
class Server:
    """A server subprocess on loopback: ``url``, ``port``, ``proc``."""

    proc: subprocess.Popen[str]
    url: str
    port: int

    def stop(self) -> None:
        stop_process(self.proc)


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
    the batch (no contention), a prefill too quick to matter, no jitter, and answers of 30-50 tokens
    (3-5 s at 10 tok/s)."""
    flags = ["--preset", "fast", "--num-parallel", str(slots), "--seed", "1", "--tune", f"solo_tps={tps}",
             "--tune", "contention=0", "--tune", "prefill_tps=1000000", "--tune", "jitter=0",
             "--tune", "min_output=30", "--tune", "max_output=50", "--keep-alive", "-1"]  # fmt: skip
    return flags + (["--trace-file", str(trace)] if trace else [])


def start_llamacpp(slots: int, threads: int = 2) -> Server:
    """The real llama.cpp server (Gemma 3 270M, the ``[real]`` extra) with ``slots`` slots on ``threads`` threads."""
    return start_server([sys.executable, "-m", "loadgen.servers.llamacpp", "--port", "0", "--slots", str(slots),
                         "--threads", str(threads)])  # fmt: skip


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


# --- our load generator ----------------------------------------------------------------------------
@dataclass
class LocustRun:
    """What one headless locust run wrote, and the CPU of its processes over the steady window."""

    requests: list[Request]
    begin: float  # the steady window, epoch seconds
    end: float
    workers: list[int]  # pids of the processes running users (the master itself when processes=0)
    master: int
    cpu: dict[int, float]  # % of one core over the window, by pid (workers, master and ``watch``)
    machine_cpu: float  # % of all cores over the window


def run_locust(scenario: dict[str, Any], processes: int, ramp: float, window: float, work: Path,
               watch: Sequence[int] = (), extra: Sequence[str] = (), env: dict[str, str] | None = None,
               ) -> LocustRun:  # fmt: skip
    """Run ``locust --headless`` on ``scenario`` (its load's duration is set here: ``ramp`` + ``window``) with
    ``processes`` worker processes (0: users in the master itself), measuring CPU over the window; ``extra``
    arguments and ``env`` variables are added to locust's."""
    scenario = {**scenario, "load": {**scenario["load"], "duration": f"{ramp + window + 1:g}s"}}
    path = work / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    results = work / "results"
    command = locust_command(path, results, *(processes_args(processes) if processes else []), *extra)
    with (work / "locust.log").open("w") as log:
        locust = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**clean_env(), **(env or {})},
                                  cwd=REPO)
        try:
            deadline = time.monotonic() + 60
            while not list(results.glob("*/requests.csv")):  # the run has started: users spawn now
                if locust.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"locust did not start a run: see {work / 'locust.log'}")
                time.sleep(0.1)
            workers = [p.pid for p in psutil.Process(locust.pid).children()] if processes else [locust.pid]
            time.sleep(ramp)
            psutil.cpu_percent()
            begin = time.time()
            with cpu_window([*workers, locust.pid, *watch]) as cpu:
                time.sleep(window)
            end = time.time()
            machine_cpu = psutil.cpu_percent()
            locust.wait(ramp + window + 120)
        finally:
            if locust.poll() is None:
                locust.kill()
                locust.wait()
    records = read_records(next(results.glob("*/requests.csv")))
    return LocustRun(records, begin, end, workers, locust.pid, cpu, machine_cpu)


# --- traces and records ---------------------------------------------------------------------------
@dataclass(slots=True)
class Request:
    """One request as a client tool recorded it (ours or a peer's), in epoch seconds."""

    request_id: str
    t_start: float
    t_first_token: float | None
    t_end: float
    output_tokens: int
    error: str  # empty when it succeeded; "cancelled" when the run ended it
    prompt_tokens: int | None = None  # the server's count (its ``usage``), where the tool recorded it

    @property
    def ok(self) -> bool:
        return not self.error


def read_records(path: Path) -> list[Request]:
    """Our ``requests.csv``."""
    with path.open(newline="", encoding="utf-8") as f:
        return [Request(f"{r['session_id']}/{r['step']}", float(r["t_start"]),
                        float(r["t_first_token"]) if r["t_first_token"] else None, float(r["t_end"]),
                        int(r["output_tokens"] or 0), r["error"],
                        int(r["prompt_tokens"]) if r["prompt_tokens"] else None)
                for r in csv.DictReader(f)]  # fmt: skip


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The emulator's trace file: one dict per finished request."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def first_tokens_in(requests: Iterable[Request], begin: float, end: float) -> list[Request]:
    """Requests sent within ``[begin, end)`` that received a first token (complete or not by the end)."""
    return [r for r in requests if r.t_first_token is not None and begin <= r.t_start < end]


def window_rates(requests: Iterable[Request], begin: float, end: float) -> tuple[float, float, float]:
    """Over ``[begin, end]``: requests in flight on average, and the successful requests completed and their
    output tokens, per second (in a steady state these equal the rates of work done, for any tool that
    runs until ``end``, whatever it does with the requests it still has in flight after that)."""
    busy = completed = tokens = 0.0
    for r in requests:
        busy += max(0.0, min(r.t_end, end) - max(r.t_start, begin))
        if r.ok and begin <= r.t_end <= end:
            completed += 1
            tokens += r.output_tokens
    span = end - begin
    return busy / span, completed / span, tokens / span


def idle_gaps(requests: Iterable[Request], streams: int, begin: float, end: float) -> list[float]:
    """For a closed loop of ``streams`` streams without think time: the idle time (seconds) between a
    request's end and its stream's next send, for the sends within ``[begin, end)``.

    Needs no stream identity: after the first ``streams`` sends, every send follows one end, so the k-th
    end (in time) is paired with the (k + streams)-th send. Any pairing of the same sends with the same
    ends has the same sum, so the mean is the one a per-stream pairing gives; the pairing in time order
    also never pairs a send with a later end."""
    starts = sorted(r.t_start for r in requests)
    ends = sorted(r.t_end for r in requests)
    return [start - ended for start, ended in zip(starts[streams:], ends, strict=False) if begin <= start < end]


def trace_by_id(trace: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trace rows by ``request_id``: the ``X-Request-Id`` our client sends (``<session_id>/<step>``)."""
    return {row["request_id"]: row for row in trace}


def trace_by_order(requests: Iterable[Request], trace: Iterable[dict[str, Any]],
                   path: str) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Trace rows for a client that sends no request id (a peer): the k-th request it sent is paired with
    the k-th request the emulator received on ``path``. Loopback keeps their order; two requests sent
    within microseconds of each other may swap, which moves each one's error by their first chunks' gap."""
    sent = sorted(requests, key=lambda r: r.t_start)
    received = sorted((row for row in trace if row["path"] == path), key=lambda row: row["received"])
    return {r.request_id: row for r, row in zip(sent, received, strict=False)}


def ttft_errors_ms(requests: Iterable[Request], rows: dict[str, dict[str, Any]]) -> list[float]:
    """Client ``t_first_token`` minus the emulator's ``first_chunk`` (ms), for each request with both."""
    errors = []
    for r in requests:
        row = rows.get(r.request_id)
        if row and row.get("first_chunk") and r.t_first_token is not None:
            errors.append((r.t_first_token - row["first_chunk"]) * 1000)
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
        locust = version("locust")
    except PackageNotFoundError:
        locust = "absent"
    return (f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, Locust {locust}, load average {os.getloadavg()[0]:.2f} at start")


# --- live metrics ---------------------------------------------------------------------------------
@contextmanager
def metrics_consumers() -> Iterator[tuple[list[str], dict[str, str], Counter[str]]]:
    """What a monitored run has on the other end of its exporters: a scraper reading ``--metrics-port`` every
    second and an OTLP/HTTP sink taking ``--otel``'s exports every second. Yields the locust arguments and
    environment that point the run at them, and the counts of ``scrapes`` and ``exports`` received."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    consumed: Counter[str] = Counter()

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            consumed["exports"] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = free_port()
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(1.0):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
                consumed["scrapes"] += 1
            except OSError:
                pass  # not up yet, or gone

    threading.Thread(target=scrape, daemon=True).start()
    try:
        yield (["--metrics-port", str(port), "--web-host", "127.0.0.1", "--otel"],
               {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
                "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"},
               consumed)
    finally:
        stop.set()
        sink.shutdown()
        sink.server_close()
