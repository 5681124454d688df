"""Fixtures for the emulator's own tests: every emulator is a real subprocess on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import EmulatorProcess, start_emulator


@pytest.fixture(scope="module")
def fast_emulator() -> Iterator[EmulatorProcess]:
    """One emulator per module with the ``fast`` preset and two slots, for shape and client tests."""
    emu = start_emulator(preset="fast", num_parallel=2)
    yield emu
    emu.stop()


#: one shared client: creating an httpx client per request costs ~0.1 s (its TLS context), which would
#: swamp the timings under test
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))


def ndjson(response: httpx.Response) -> list[dict]:
    """The NDJSON lines of a finished response."""
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def sse(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order."""
    return [line[len("data: ") :] for line in response.text.split("\n") if line.startswith("data: ")]
