"""The scenario checker on the command line, and the loader's promise to stay free of Locust."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # the checker and the import probe run as subprocesses

REPO = Path(__file__).parents[2]
BAD = Path(__file__).parent / "bad"


def _cli(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", "check", *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_reports_a_bad_scenario_on_stderr_and_exits_2():
    result = _cli(BAD / "unknown-load-key.yaml", BAD / "host-url-no-scheme.yaml")
    assert result.returncode == 2
    assert result.stdout == ""
    typo = "unknown-load-key.yaml:10:3: load.spawn_rte: unknown key 'spawn_rte'; did you mean 'spawn_rate'?"
    assert typo in result.stderr
    assert "host-url-no-scheme.yaml:8:5: hosts[0].url: must be an http:// or https:// URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_says_ok_for_a_good_scenario():
    result = _cli(REPO / "scenarios" / "mixed.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: mixed (3 workloads)\n"


def test_the_loader_imports_neither_locust_nor_gevent():
    code = (
        "import sys, loadgen.scenario.scenario\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'locust', 'gevent'})\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
