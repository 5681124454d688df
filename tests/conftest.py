"""Shared test fixtures, and the guard that keeps the test tiers honest.

Tiers:

- pure (``-m "not integration"``): no sockets, no processes; the whole tier runs in under a minute.
  Enforced (``tests/tiers.py``): while a test not marked ``integration`` sets up, runs or tears down,
  connecting or binding an AF_INET/AF_INET6 socket (plain, gevent or ZeroMQ over TCP) and starting a
  process (``subprocess``, ``os.fork``, ``posix_spawn``, ``os.system``, ``multiprocessing``) raise
  ``UnmarkedIO`` ("an unmarked test opened a socket: mark it integration"). It is no ``OSError``, so code
  that retries on connection errors does not hide it, and a test that catches it fails all the same.
  Unix sockets, socket pairs and pipes (gevent's own) are left alone.
- ``integration``: real sockets, servers or Locust runners on loopback, subprocesses. Mark the module
  (``pytestmark = pytest.mark.integration``) or the test. ``real`` (llama.cpp with a real model) and
  ``browser`` (headless Chromium) tests must be ``integration`` too; collection stops if one is not.
- ``soak``: long bounded runs, left out unless asked for (``-m soak``); ``integration`` too.
- ``slow``: long agreement checks (an exhaustive sweep as the reference), left out unless asked for
  (``-m slow``); ``integration`` too.

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
from collections.abc import Callable, Generator, Iterator
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
from tests.tiers import UnmarkedIO, no_sockets_or_processes

# --- tiers ------------------------------------------------------------------------------------------
#: markers of tests that always open sockets or start processes
OUTSIDE_THE_PURE_TIER = ("real", "browser", "soak", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``real``, ``browser`` and ``soak`` tests start servers and processes: they must be ``integration`` too."""
    wrong = [item.nodeid for item in items
             if any(item.get_closest_marker(name) for name in OUTSIDE_THE_PURE_TIER)
             and not item.get_closest_marker("integration")]  # fmt: skip
    if wrong:
        listed = "\n  ".join(wrong)
        raise pytest.UsageError(f"real, browser, soak and slow tests must also be marked integration:\n  {listed}")


def _pure(item: pytest.Item) -> Generator[None, object, object]:
    """Run one phase of ``item`` under the pure tier's guard unless it is marked ``integration``."""
    if item.get_closest_marker("integration"):
        return (yield)
    tripped: list[str] = []
    with no_sockets_or_processes(item.nodeid, tripped):
        try:
            result = yield
        except BaseException as error:
            if tripped and not isinstance(error, UnmarkedIO):  # the test failed some other way after it
                raise UnmarkedIO(tripped[0]) from error
            raise
    if tripped:  # the test caught the error and went on
        raise UnmarkedIO(tripped[0])
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _pure(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _pure(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _pure(item))


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
