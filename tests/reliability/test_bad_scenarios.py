"""Bad scenarios through the real ``locust`` command: exit code 2, one line on stderr naming the file,
line and field, no traceback, and no load sent.

The run directory is created when a test starts, before any user is spawned, so its absence proves that
no request left. Locust reports every scenario error through the same path, so a sample of the corpus
(``tests/scenario/bad/``, whose every file the loader tests check) spanning each kind of problem runs
here, plus hosts that do not answer, which only a start can find.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadgen.scenario.scenario import ScenarioError, load_scenario
from tests.helpers import REPO, free_port, locust_command, start_emulator
from tests.scenario.test_scenario_bad_corpus import BAD, header

pytestmark = pytest.mark.integration

#: Locust processes started at once: each is about a second of one core's time.
CONCURRENCY = 4
#: Seconds one may take before it counts as hung (a busy machine runs a batch of them many times slower).
HUNG_S = 180

SAMPLE = {
    "YAML syntax": ["yaml-tab", "yaml-unclosed-list", "yaml-duplicate-key", "empty-file"],
    "wrong type": ["users-not-a-number", "options-not-a-mapping"],
    "unknown key, did you mean": ["unknown-top-key", "emulator-setting-typo"],
    "missing required field": ["missing-workloads", "missing-model"],
    "negative or zero count": ["workload-users-negative", "load-users-zero"],
    "prompt files": ["prompt-file-empty", "prompt-file-missing"],
    "unknown workload kind": ["unknown-workload-kind"],
    "malformed host URL": ["host-url-bad-port", "host-url-bad-ipv6"],
    "contradictory load": ["sweep-duration-and-requests", "fixed-users-above-load"],
    "huge value": ["users-huge", "duration-huge"],
    "secret in the file": ["secret-in-file"],
}
CASES = [BAD / f"{name}.yaml" for names in SAMPLE.values() for name in names]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    results: Path


def run_all(commands: dict[str, tuple[Path, list[str]]], tmp: Path) -> dict[str, Outcome]:
    """Run ``locust`` on each ``(scenario, extra args)``, ``CONCURRENCY`` at a time; killed if one hangs."""
    outcomes: dict[str, Outcome] = {}
    names = list(commands)
    for start in range(0, len(names), CONCURRENCY):
        batch = {}
        for name in names[start:start + CONCURRENCY]:
            scenario, extra = commands[name]
            results = tmp / f"results-{name}"
            batch[name] = (subprocess.Popen(locust_command(scenario, results, *extra), cwd=REPO, text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE), results)
        try:
            for name, (proc, results) in batch.items():
                stdout, stderr = proc.communicate(timeout=HUNG_S)
                outcomes[name] = Outcome(proc.returncode, stdout, stderr, results)
        finally:
            for proc, _ in batch.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return outcomes


@pytest.fixture(scope="module")
def refused_url() -> str:
    """A loopback URL nobody listens on."""
    return f"http://127.0.0.1:{free_port()}"


UNREACHABLE = {
    # name: (scenario text, the line of the url that does not answer, its field, extra locust args)
    "unreachable-host": ("name: x\nmodel: m\nhosts:\n  - name: gpu1\n    url: {url}\n"
                         "workloads: [{{name: chat, kind: chat}}]\n", 5, "hosts[0].url", ()),
    "unreachable-second-host": ("name: x\nmodel: m\nhosts:\n  - url: {live}\n  - url: {url}\n"
                                "workloads: [{{name: chat, kind: chat}}]\n", 5, "hosts[1].url", ()),
    "unreachable-hosts-option": ("name: x\nmodel: m\nworkloads: [{{name: chat, kind: chat}}]\n", None, "--hosts",
                                 ("--hosts", "{url}")),
}


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """A server that answers (a reachable first host), for a scenario whose second host does not."""
    emu = start_emulator(preset="fast")
    yield emu.url
    emu.stop()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, refused_url: str, live_url: str) -> dict[str, Outcome]:
    """Every case through ``locust``, by name."""
    tmp = tmp_path_factory.mktemp("bad-through-locust")
    commands: dict[str, tuple[Path, list[str]]] = {path.stem: (path, []) for path in CASES}
    for name, (text, _, _, extra) in UNREACHABLE.items():
        path = tmp / f"{name}.yaml"
        path.write_text(text.format(url=refused_url, live=live_url))
        commands[name] = (path, [arg.format(url=refused_url) for arg in extra])
    return run_all(commands, tmp)


def assert_one_clean_error(outcome: Outcome) -> str:
    """Exit code 2, nothing on stdout, one ``error:`` line on stderr, no traceback, no run directory."""
    assert outcome.returncode == 2, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome.stderr
    assert outcome.stdout == "", outcome.stdout
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert not outcome.results.exists(), "a run started: load may have been sent"
    return lines[0]


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_bad_scenario_stops_locust_with_one_line(outcomes: dict[str, Outcome], path: Path) -> None:
    line = assert_one_clean_error(outcomes[path.stem])
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert line == f"error: {caught.value}"  # the loader's message, which names file:line:column and field
    assert line.startswith(f"error: {path}:{header(path, 'line')}:")
    if field := header(path, "field"):
        assert f": {field}: " in line


@pytest.mark.parametrize("name", list(UNREACHABLE))
def test_a_host_that_does_not_answer_stops_locust_at_start(outcomes: dict[str, Outcome], refused_url: str,
                                                           name: str) -> None:
    line = assert_one_clean_error(outcomes[name])
    _, line_number, field, _ = UNREACHABLE[name]
    problem = f"{field}: {refused_url} does not answer (Connection refused); is the server running?"
    if line_number is None:  # given on the command line: no file line to name
        assert line == f"error: {problem}"
    else:
        assert line.startswith("error: ") and line.endswith(f"{name}.yaml:{line_number}:5: {problem}"), line
