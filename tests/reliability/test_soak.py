"""A short form of the soak benchmark (``benchmarks/soak.py``): a master and two workers under load keep
their memory flat and lose no record. Out of the default run: ``pytest -m soak``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.soak]


def test_memory_stays_flat_and_every_record_arrives() -> None:
    result = subprocess.run([sys.executable, "benchmarks/soak.py", "--minutes", "1.5", "--users", "50",
                             "--interval", "5", "--warmup-minutes", "0.5"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: memory flat" in result.stdout and "records all there" in result.stdout
