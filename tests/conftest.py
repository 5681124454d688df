"""Shared test fixtures.

Importing locust monkey-patches the process with gevent. Some test modules import it (directly or
through ``locustfiles``), so patch first, before any test module or shared client exists: a process
patched halfway (real OS locks held by greenlets) deadlocks. Servers run as subprocesses.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    REPO,
    EmulatorProcess,
    LocustRun,
    Stub,
    kill_group,
    locust_command,
    read_run,
    start_emulator,
)

#: A ``locust`` process running in the background and the results directory it writes to.
Background = tuple[subprocess.Popen[str], Path]


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorProcess]]:
    """``emulator_factory(**flags)`` starts an emulator subprocess (``.url``, ``.port``, ``.proc``,
    ``.stop()``); every one it started is stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(env: dict[str, str] | None = None, **flags: object) -> EmulatorProcess:
        emu = start_emulator(env=env, **flags)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a scenario dict to a YAML file."""

    def write(data: dict[str, Any], name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def run_locust(tmp_path: Path, scenario_file: Callable[..., Path]) -> Callable[..., LocustRun]:
    """Run ``locust --headless`` on a scenario (a dict or a path) to completion."""
    counter = iter(range(1000))

    def run(scenario: dict[str, Any] | Path, *args: str, timeout: float = 120) -> LocustRun:
        path = scenario if isinstance(scenario, Path) else scenario_file(scenario, f"scenario{next(counter)}.yaml")
        results = tmp_path / f"results{next(counter)}"
        proc = subprocess.run(locust_command(path, results, *args), cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        output = proc.stdout + proc.stderr
        assert proc.returncode in (0, 1), output
        return read_run(results, proc.returncode, output)

    return run


@pytest.fixture
def start_locust(tmp_path: Path, scenario_file: Callable[..., Path]) -> Iterator[Callable[..., Background]]:
    """Start ``locust --headless`` in the background, in its own process group; the test decides when and
    how it ends. Whatever is left of each group (master, forked workers, embedded servers) is killed at
    teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(scenario: dict[str, Any], *args: str) -> Background:
        results = tmp_path / f"results-bg{len(procs)}"
        proc = subprocess.Popen(locust_command(scenario_file(scenario, f"bg{len(procs)}.yaml"), results, *args),
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        procs.append(proc)
        return proc, results

    yield start
    for proc in procs:
        kill_group(proc)


@pytest.fixture
def token() -> str:
    """A fresh API key, to be looked for where it must not be."""
    return f"sk-test-{secrets.token_hex(16)}"


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[Stub]:
    """An Ollama look-alike (``tests/ollama_stub.py``) that logs every request's ``Authorization`` header."""
    log = tmp_path / "stub-requests.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tests.ollama_stub", str(log)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield Stub(line.split()[-1], log, proc)
    finally:
        proc.kill()
        proc.wait()
