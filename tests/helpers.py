"""Test helpers shared by every test directory: the emulator and ``locust`` as real subprocesses.

Locust's pytest plugin monkey-patches the test process with gevent, so servers never run in it: the
emulator is started with ``python -m emulator --host 127.0.0.1:0`` and found through the one line it
prints once listening (``emulator listening on http://HOST:PORT``). A ``locust`` run is read back
from the run directory it wrote.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pandas as pd
import psutil

from analysis.schema import RECORD_COLUMNS

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"^emulator listening on (http://(.+):(\d+))$")


@dataclass
class EmulatorProcess:
    """A running emulator: ``url`` (``http://127.0.0.1:PORT``), ``port``, ``proc``; ``stop()`` ends it."""

    proc: subprocess.Popen
    url: str
    port: int
    stderr_path: Path
    args: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds; returns the exit code."""
        stop_process(self.proc, timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def emulator_admin(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call one of the emulator's ``/_emulator/...`` endpoints (POST with a body, GET without); its answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def emulator_change(url: str, path: str, body: dict[str, Any]) -> tuple[float, float]:
    """Make a change through an emulator admin endpoint (``emulator_admin``) and say when, on this machine's
    clock: ``(sent, answered)``. The emulator makes it in between (``/_emulator/refuse`` closes its listener
    just after answering): a request answered before ``sent`` was served before the change, one sent after
    ``answered`` meets it (a fault spec)."""
    sent = time.time()
    emulator_admin(url, path, body)
    return sent, time.time()


def read_trace(path: Path) -> pd.DataFrame:
    """An emulator's ``--trace-file`` (``trace_file`` of an embedded one): the load's requests, one row each,
    with the server's epoch times (``received``, ``runner_acquired``, ``slot_acquired``, ``prefill_start``,
    ``last_token``, ``last_chunk``...) and the fault it applied. The start's probes carry no request id."""
    trace = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    return trace[trace.request_id != ""]


def request_ids(records: pd.DataFrame) -> pd.Series:
    """Each record's ``X-Request-Id`` (``<session_id>/<step>``), as the emulator's trace has it."""
    return records.session_id + "/" + records.step.astype(str)


def with_trace(records: pd.DataFrame, trace_file: Path) -> pd.DataFrame:
    """The records joined to the emulator's trace of the same requests (server columns suffixed ``_server``
    where the names clash); every record must have its trace line and every trace line its record."""
    joined = records.assign(request_id=request_ids(records)).merge(
        read_trace(trace_file), on="request_id", how="outer", suffixes=("", "_server"), indicator=True)
    assert (joined._merge == "both").all(), joined[joined._merge != "both"][["request_id", "error", "status"]]
    return joined.drop(columns="_merge")


def emulator_args(**flags: object) -> list[str]:
    """Flags as CLI arguments: ``num_parallel=4`` -> ``--num-parallel 4``; ``True`` -> a bare flag."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        elif value is True:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def start_emulator(env: dict[str, str] | None = None, timeout: float = 15.0, prefix: Sequence[str] = (),
                   **flags: object) -> EmulatorProcess:
    """Start ``python -m emulator`` on a free loopback port and wait for its listening line.

    ``flags`` become CLI flags (see ``emulator_args``); ``host`` defaults to ``127.0.0.1:0``. ``env``
    replaces the inherited ``OLLAMA_*`` variables (which are never inherited). ``prefix`` goes before
    the command (``ip netns exec NAME`` runs it in a network namespace).
    """
    flags.setdefault("host", "127.0.0.1:0")
    args = [*prefix, sys.executable, "-m", "emulator", *emulator_args(**flags)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    clean.update(env or {})
    clean["PYTHONPATH"] = str(REPO) + os.pathsep + clean.get("PYTHONPATH", "")
    stderr_file = tempfile.NamedTemporaryFile(prefix="emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr_file, env=clean, cwd=REPO)
    stderr_file.close()
    emu = EmulatorProcess(proc, "", 0, Path(stderr_file.name), args)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        if proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            byte = os.read(proc.stdout.fileno(), 1)
            if not byte:
                break
            line += byte
    match = LISTENING.match(line.decode(errors="replace").strip())
    if match is None:
        emu.stop()
        raise RuntimeError(f"emulator did not start ({args}): stdout={line!r} stderr={emu.stderr()}")
    emu.url, emu.port = match.group(1), int(match.group(3))
    return emu


# -- locust runs -------------------------------------------------------------------------------------


@dataclass
class LocustRun:
    """A finished ``locust`` process and the run directory it wrote."""

    returncode: int
    output: str
    dir: Path
    info: dict[str, Any]
    records: pd.DataFrame
    stages: pd.DataFrame

    @property
    def locust_stats(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / "locust_stats.csv")


def embedded_emulator(name: str = "emu", num_parallel: int = 2, speed: float = 20) -> dict[str, Any]:
    """A scenario host: an embedded emulator with the M1 preset sped up ``speed`` times."""
    return {"name": name, "embedded": "emulator",
            "settings": {"num_parallel": num_parallel, "preset": "m1", "speed": speed}}


def emulator_scenario(workloads: list[dict[str, Any]], *, api: str = "ollama", num_parallel: int = 2,
                      speed: float = 20, load: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A scenario against one embedded emulator (``hosts=[...]`` in ``top`` replaces it)."""
    return {
        "name": "test",
        "api": api,
        "model": "llama3.2:latest",
        "hosts": [embedded_emulator(num_parallel=num_parallel, speed=speed)],
        "options": {"num_predict": 24, "temperature": 0},
        "workloads": workloads,
        "load": load or {"users": 2, "duration": "3s", "stop_timeout": "30s"},
        **top,
    }


def locust_command(scenario: Path, results: Path, *args: str) -> list[str]:
    """``locust`` on the suite's locustfiles, headless, without the report."""
    return [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles"), "--scenario", str(scenario),
            "--results-dir", str(results), "--headless", "--no-report", "--loglevel", "WARNING", *args]


def free_port() -> int:
    """A loopback port free at the time of asking (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_args(workers: int) -> list[str]:
    """``locust`` arguments for a master with ``workers`` forked workers, on loopback and on a port of its
    own: Locust's default (5557 on every interface) would let another run's workers join this one. The
    forked workers connect to ``--master-port``, not to ``--master-bind-port``, so both are given."""
    port = str(free_port())
    return ["--processes", str(workers), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--master-port", port]


def forked_workers(master_pid: int, count: int, timeout: float = 60) -> list[psutil.Process]:
    """The ``count`` worker processes a ``--processes`` master forked (its only children: hosts external)."""
    return poll(lambda: len(children := psutil.Process(master_pid).children()) == count and children,
                f"{count} forked workers", timeout)


def read_run(results: Path, returncode: int, output: str) -> LocustRun:
    """The one run directory under ``results``."""
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run directory in {results}, got {runs}\n{output}"
    run_dir = runs[0]
    return LocustRun(
        returncode=returncode,
        output=output,
        dir=run_dir,
        info=json.loads((run_dir / "run.json").read_text()),
        records=read_records(run_dir / "requests.csv"),
        stages=pd.read_csv(run_dir / "stages.csv"),
    )


def read_records(source: Path | IO[bytes]) -> pd.DataFrame:
    """A ``requests.csv``, with ``error`` and ``error_detail`` as text ("" for none)."""
    return pd.read_csv(source, dtype={"error": str, "error_detail": str}).fillna({"error": "", "error_detail": ""})


def assert_records_reconcile(run: LocustRun) -> None:
    """The run ended gracefully; every record the master received is in requests.csv, once; and every
    worker that lasted to the end had a record for each request it sent (one that vanished had sent, at
    its last report, its records so far plus the requests then in flight, which are lost)."""
    records = run.records
    assert run.info["complete"], run.output
    for worker in run.info["workers"]:
        rows = int((records.worker == worker["index"]).sum())
        assert worker["records_received"] == rows, worker
        if worker["vanished_at"] is None:
            assert worker["requests_sent"] == rows, worker
        else:
            assert worker["requests_sent"] >= rows, worker
    assert sum(w["records_received"] for w in run.info["workers"]) == len(records)
    assert not records.duplicated(["session_id", "step"]).any()  # session ids are unique across workers


def assert_locust_counted(run: LocustRun) -> None:
    """Locust's statistics counted the requests and failures the records hold (cancelled requests are the
    run's doing, not the server's, and are not in Locust's tables)."""
    counted = run.records[run.records.error != "cancelled"]
    e2e = run.locust_stats[run.locust_stats.Type == "E2E"]
    assert e2e["Request Count"].sum() == len(counted), f"Locust counted {e2e['Request Count'].sum()}\n{run.output}"
    assert e2e["Failure Count"].sum() == (counted.error != "").sum(), run.output


def live_records(results: Path) -> pd.DataFrame:
    """The complete rows written so far to ``requests.csv`` by the run in progress under ``results``
    (empty before it starts; a row being written is left out)."""
    paths = list(results.glob("*/requests.csv"))
    data = paths[0].read_bytes() if paths else b""
    data = data[: data.rfind(b"\n") + 1]
    if data.count(b"\n") < 2:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    return read_records(io.BytesIO(data))


def poll(condition: Callable[[], T], what: str, timeout: float = 30, interval: float = 0.2) -> T:
    """``condition()`` once it is truthy, polled every ``interval`` s; fails after ``timeout`` s saying ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return result


def wait_for_records(results: Path, at_least: int, timeout: float = 30) -> None:
    """Wait until the run being written under ``results`` has started (its requests.csv exists) and has at
    least ``at_least`` request rows."""
    poll(lambda: any(results.glob("*/requests.csv")) and len(live_records(results)) >= at_least,
         f"{at_least} records under {results}", timeout)


def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Ctrl-C a locust process and return its output once it has exited."""
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=timeout)
    return output


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM ``proc``, then SIGKILL it if it has not exited in ``timeout`` seconds; reap it either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and everything it started (forked workers,
    embedded servers), even after it has died itself; then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class Stub:
    """A running ``tests/ollama_stub.py``: its URL and the log of the requests it got."""

    url: str
    log: Path
    proc: subprocess.Popen[str]

    def requests(self) -> pd.DataFrame:
        """One row per request so far: ``path``, ``request_id``, ``authorization``."""
        return pd.read_json(self.log, lines=True) if self.log.exists() else pd.DataFrame()
