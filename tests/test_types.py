"""Static types: mypy over the four packages, with the project's configuration (``[tool.mypy]`` in
pyproject.toml: strict for the analysis, the emulator, the scenario schema and the wire protocol).

It runs mypy as a subprocess (integration). Its incremental cache (``.mypy_cache/``) makes a run after a
small change take seconds; a cold run takes some 15 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def test_mypy_passes_with_the_project_configuration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"mypy found problems:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout
