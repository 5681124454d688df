"""Fixtures for the emulator's own tests: every emulator is a real subprocess on loopback.

Timing-dependent tests assert on what the emulator recorded (``--trace-file``, read with ``Trace``) and
what it reports (``/_emulator/state``): order, counts, who waited for whom. How closely its clock follows
its speed model is measured by ``benchmarks/emulator_timing.py``, not asserted here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import EmulatorProcess, poll, start_emulator

#: trace epochs are rounded to the microsecond: a tolerance for comparing two of them, or one with a duration
TRACE_EPS_S = 2e-6


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


class Trace:
    """An emulator's ``--trace-file``, read while it runs (the emulator writes it about once a second)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, *request_ids: str, timeout: float = 15) -> list[dict[str, Any]]:
        """The trace lines of these requests (by ``X-Request-Id``), in the order asked, once all are written."""
        return poll(lambda: self._find(request_ids), f"trace lines for {request_ids} in {self.path}", timeout)

    def _find(self, request_ids: tuple[str, ...]) -> list[dict[str, Any]]:
        """The lines of these requests; none until all are written."""
        text = self.path.read_text() if self.path.exists() else ""
        lines = text[: text.rfind("\n") + 1].splitlines()  # a line being written is left out
        found: dict[str, list[dict[str, Any]]] = {}
        for row in map(json.loads, lines):
            found.setdefault(row["request_id"], []).append(row)
        if not all(rid in found for rid in request_ids):
            return []
        repeated = [rid for rid in request_ids if len(found[rid]) > 1]
        assert not repeated, f"request ids used more than once: {repeated}"
        return [found[rid][0] for rid in request_ids]


#: ``emulator_factory``: flags in, a started emulator out
EmulatorFactory = Callable[..., EmulatorProcess]
#: ``traced_emulator``: flags in, a started emulator and its trace out
TracedEmulator = Callable[..., tuple[EmulatorProcess, Trace]]


@pytest.fixture
def traced_emulator(emulator_factory: EmulatorFactory, tmp_path: Path) -> TracedEmulator:
    """``traced_emulator(**flags)`` starts an emulator with ``--trace-file`` (stopped at teardown); returns it
    and its ``Trace``."""
    numbers = count()

    def start(**flags: object) -> tuple[EmulatorProcess, Trace]:
        path = tmp_path / f"trace-{next(numbers)}.jsonl"
        return emulator_factory(trace_file=str(path), **flags), Trace(path)

    return start
