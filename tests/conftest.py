"""Shared test fixtures.

Importing locust monkey-patches the process with gevent. Some test modules import it (directly or
through ``locustfiles``), so patch first, before any test module or shared client exists: a process
patched halfway (real OS locks held by greenlets) deadlocks. Servers run as subprocesses.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

from collections.abc import Callable, Iterator

import pytest

from tests.helpers import EmulatorProcess, start_emulator


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
