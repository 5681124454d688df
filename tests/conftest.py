"""Shared test fixtures. Locust's pytest plugin imports locust (and so gevent's monkey patching)
before any test module, so every test runs in a patched process; servers run as subprocesses."""

from __future__ import annotations

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
