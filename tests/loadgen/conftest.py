"""Run the real ``locust`` command on a scenario and read what the run wrote."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


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


def emulator_scenario(workloads: list[dict[str, Any]], *, api: str = "ollama", num_parallel: int = 2,
                      speed: float = 20, load: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A scenario against one embedded emulator with the M1 preset sped up ``speed`` times."""
    return {
        "name": "test",
        "api": api,
        "model": "llama3.2:latest",
        "hosts": [{"name": "emu", "embedded": "emulator",
                   "settings": {"num_parallel": num_parallel, "preset": "m1", "speed": speed}}],
        "options": {"num_predict": 24, "temperature": 0},
        "workloads": workloads,
        "load": load or {"users": 2, "duration": "3s", "stop_timeout": "30s"},
        **top,
    }


def locust_command(scenario: Path, results: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles"), "--scenario", str(scenario),
            "--results-dir", str(results), "--headless", "--no-report", "--loglevel", "WARNING", *args]


def read_run(results: Path, returncode: int, output: str) -> LocustRun:
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run directory in {results}, got {runs}\n{output}"
    run_dir = runs[0]
    return LocustRun(
        returncode=returncode,
        output=output,
        dir=run_dir,
        info=json.loads((run_dir / "run.json").read_text()),
        records=pd.read_csv(run_dir / "requests.csv", dtype={"error": str, "error_detail": str}).fillna(
            {"error": "", "error_detail": ""}),
        stages=pd.read_csv(run_dir / "stages.csv"),
    )


@pytest.fixture
def scenario_file(tmp_path: Path):
    """Write a scenario dict to a YAML file."""

    def write(data: dict[str, Any], name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def run_locust(tmp_path: Path, scenario_file):
    """Run ``locust --headless`` on a scenario (a dict or a path) to completion."""
    counter = iter(range(1000))

    def run(scenario: dict[str, Any] | Path, *args: str, timeout: float = 120) -> LocustRun:
        path = scenario if isinstance(scenario, Path) else scenario_file(scenario, f"scenario{next(counter)}.yaml")
        results = tmp_path / f"results{next(counter)}"
        proc = subprocess.run(locust_command(path, results, *args), cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        output = proc.stdout + proc.stderr
        assert proc.returncode in (0, 1), output
        return read_run(results, proc.returncode, output)

    return run


@pytest.fixture
def start_locust(tmp_path: Path, scenario_file) -> Iterator:
    """Start ``locust --headless`` in the background; the test decides when and how it ends."""
    procs: list[subprocess.Popen[str]] = []

    def start(scenario: dict[str, Any], *args: str) -> tuple[subprocess.Popen[str], Path]:
        results = tmp_path / f"results-bg{len(procs)}"
        proc = subprocess.Popen(locust_command(scenario_file(scenario, f"bg{len(procs)}.yaml"), results, *args),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


@dataclass
class Comparison:
    """What ``python -m locustfiles run`` compared: per run (labelled by variant) its slots and curve."""

    results: Path
    targets: dict[str, dict[str, Any]]  # variant -> slots, serial, server_metrics...
    curves: dict[str, pd.DataFrame]  # variant -> the level-by-level curve, indexed by concurrency

    def records(self, variant: str) -> pd.DataFrame:
        (run_dir,) = self.results.glob(f"*-{variant}")
        return pd.read_csv(run_dir / "requests.csv")


def run_variants(tmp_path: Path, scenario_file: str, change: Callable[[dict[str, Any]], None]) -> Comparison:
    """Run a shipped scenario with variants (``scenarios/<scenario_file>``, edited by ``change``) the
    way the README does, and read the comparison it wrote."""
    scenario = yaml.safe_load((ROOT / "scenarios" / scenario_file).read_text())
    change(scenario)
    path = tmp_path / scenario_file
    path.write_text(yaml.safe_dump(scenario))
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "locustfiles", "run", str(path), "--results-dir", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (compare,) = results.glob("*-compare/compare.json")
    assert compare.with_name("compare.html").exists()
    summary = json.loads(compare.read_text())
    curves = pd.DataFrame(summary["curves"])
    return Comparison(
        results=results,
        targets={t["run"]: t for t in summary["targets"]},
        curves={run: curve.set_index("x") for run, curve in curves.groupby("run")},
    )


def slot_wait(records: pd.DataFrame) -> pd.Series:
    """Ollama's slot wait: total minus load, prefill and decode (docs/records.md)."""
    return (records.server_total_s - records.server_load_s - records.server_prompt_eval_s
            - records.server_eval_s)

