"""Smoke run of ``benchmarks/emulator_timing.py`` with small counts: its modelled figures are the speed
model's, its ratios are its measured figures over its modelled ones, and what the emulator guarantees (a
step never ends before its deadline, a load never ends before its time) shows in them. Never a time."""

from __future__ import annotations

import pytest

from emulator.presets import get_preset
from emulator.throughput import Throughput
from tests.benchmarks.test_benchmarks import number, run, tables

pytestmark = pytest.mark.integration

SPEED = 20
GATE_S = 1.0
SLOTS = (1, 2)
LEVELS = (1, 2)
JITTER = 0.02  # m1: each modelled step is within 2% of the formula
AT_LEAST_MODELLED = 0.999  # a ratio of 1 printed to three decimals, less a rounding


def p50_p99(cell: str) -> tuple[float, float]:
    """``1.002 / 1.010`` as two floats."""
    p50, p99 = cell.split("/")
    return number(p50), number(p99)


def test_emulator_timing_measures_the_clock_against_the_model() -> None:
    output = run("emulator_timing.py", "--slots", ",".join(map(str, SLOTS)), "--levels", ",".join(map(str, LEVELS)),
                 "--rounds", "1", "--tokens", "20", "--speed", str(SPEED), "--gate", str(GATE_S))  # fmt: skip
    timing, rates, loads = tables(output)
    levels = [(slots, n) for slots in SLOTS for n in LEVELS]
    assert [(int(r["slots"]), int(r["concurrent"])) for r in timing] == levels
    assert [(int(r["slots"]), int(r["concurrent"])) for r in rates] == levels
    for row in timing:
        assert row["requests"] == row["concurrent"] and row["rounds gated"] == "1/1"
        # a generation never ends before its modelled time: an upside-down ratio, or one of other fields, falls below
        assert min(p50_p99(row["generation / modelled p50 / p99"])) >= AT_LEAST_MODELLED
    aggregate = {}
    for row in rates:
        slots, n = int(row["slots"]), int(row["concurrent"])
        batch = min(n, slots)  # the requests that decode together
        per_sequence = Throughput(get_preset("m1"), SPEED, slots, 1.0, seed=0).sequence_tps(batch)
        assert number(row["modelled"]) == pytest.approx(per_sequence, rel=JITTER + 0.001)
        measured_over_modelled = number(row["tok/s per request"]) / number(row["modelled"])
        assert number(row["per-request ratio"]) == pytest.approx(measured_over_modelled, abs=0.002)
        measured_over_modelled = number(row["aggregate tok/s"]) / number(row["modelled aggregate"])
        assert number(row["aggregate ratio"]) == pytest.approx(measured_over_modelled, abs=0.002)
        aggregate[slots, n] = number(row["modelled aggregate"])
    # one slot: two requests take twice as long as one; two slots: two decode together, faster in aggregate
    assert aggregate[1, 2] == pytest.approx(aggregate[1, 1], rel=2 * JITTER)
    assert aggregate[2, 2] > 1.2 * aggregate[2, 1]
    modelled_load_s = get_preset("m1").fit_s / SPEED + GATE_S
    for row in loads:
        assert row["loads"] == str(len(LEVELS))
        assert number(row["modelled s"]) == pytest.approx(modelled_load_s, abs=1e-4)
        assert min(p50_p99(row["load / modelled p50 / p99"])) >= AT_LEAST_MODELLED  # a load is a sleep
