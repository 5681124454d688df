"""Target advice: a run against the embedded emulator is a what-if, not a measurement of hardware."""

from __future__ import annotations

from typing import Any

import pytest

from tests.analysis.helpers import advice_on, run_of, served


@pytest.mark.parametrize(
    "host, advice",
    [
        ({"embedded": "emulator"}, ["h1: the embedded Ollama emulator at http://127.0.0.1:11434 - a what-if from its "
                                    "throughput model, not a measurement of hardware"]),
        ({"server": "ollama", "version": "0.12.3"}, []),  # a real server: its numbers are measurements
    ],
    ids=["emulator", "external"],
)
def test_an_emulator_run_is_a_what_if(host: dict[str, Any], advice: list[str]):
    info = {"hosts": [{"name": "h1", "url": "http://127.0.0.1:11434", **host}]}
    assert advice_on(run_of([served(0.0, 0.0, 0.1, 1.0)], info=info), "target") == advice
