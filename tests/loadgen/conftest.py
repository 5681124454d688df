"""Locust runs the test decides how to end, and what the workload tests read from their records.
(``run_locust`` and ``scenario_file`` are in ``tests/conftest.py``.)"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers import REPO, locust_command


@pytest.fixture
def start_locust(tmp_path: Path, scenario_file) -> Iterator:
    """Start ``locust --headless`` in the background; the test decides when and how it ends."""
    procs: list[subprocess.Popen[str]] = []

    def start(scenario: dict[str, Any], *args: str) -> tuple[subprocess.Popen[str], Path]:
        results = tmp_path / f"results-bg{len(procs)}"
        proc = subprocess.Popen(locust_command(scenario_file(scenario, f"bg{len(procs)}.yaml"), results, *args),
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc, results

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for_records(results: Path, at_least: int, timeout: float = 30) -> None:
    """Wait until the run being written under ``results`` has at least ``at_least`` request rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in results.glob("*/requests.csv"):
            if sum(1 for _ in path.open()) - 1 >= at_least:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} records under {results} after {timeout} s")


def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Ctrl-C a locust process and return its output once it has exited."""
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=timeout)
    return output


def slot_wait(records: pd.DataFrame) -> pd.Series:
    """Ollama's slot wait: total minus load, prefill and decode (docs/records.md)."""
    return (records.server_total_s - records.server_load_s - records.server_prompt_eval_s
            - records.server_eval_s)

