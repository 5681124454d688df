"""Smoke run of ``benchmarks/whatif_accuracy.py``'s emulator mode with one round of few tokens: a row for every
preset field and every level; the truth's fields the benchmark does not draw are its base preset's; every
printed ratio is the ratio of the two printed figures it divides; and the measured figures are bounded by what
the printed truth can produce. How close the fit comes is ``tests/emulator/test_twin_recovery.py``'s question."""

from __future__ import annotations

import pytest

from analysis.twin.fit import PRESET_ORDER
from emulator.presets import PRESETS
from tests.benchmarks.test_benchmarks import bounds, number, overlaps, ratio, run, tables

pytestmark = pytest.mark.integration

SEED = 3
TOKENS = 8
LEVELS = [1, 2, 4]
SLOTS = 2  # the setting predicted and measured
DRAWN = {"solo_tps", "parallel_penalty", "contention", "prefill_tps"}
UNDETERMINED = {"min_output", "max_output"}  # every request stops at num_predict


def test_whatif_accuracy_sets_the_truth_and_the_prediction_beside_what_was_measured() -> None:
    output = run("whatif_accuracy.py", "--target", "emulator", "--seed", str(SEED), "--rounds", "1",
                 "--tokens", str(TOKENS), timeout=300)
    parameters, predicted = tables(output)
    assert [row["parameter"] for row in parameters] == list(PRESET_ORDER)
    truth = {row["parameter"]: row for row in parameters}
    for name in set(PRESET_ORDER) - DRAWN:  # the base preset's, as printed
        assert number(truth[name]["truth"]) == pytest.approx(getattr(PRESETS["m1"], name)), truth[name]
    for name, row in truth.items():
        if name in UNDETERMINED:
            assert (row["recovered"], row["recovered / truth"]) == ("undetermined", "n/a"), row
            assert f"- {name} undetermined: " in output
        else:
            assert overlaps(ratio(row["recovered"], row["truth"]), *bounds(row["recovered / truth"])), row

    assert [int(row["users"]) for row in predicted] == LEVELS
    solo = number(truth["solo_tps"]["truth"]) / (1 + number(truth["parallel_penalty"]["truth"]) * (SLOTS - 1))
    contention = number(truth["contention"]["truth"])
    for row in predicted:
        assert overlaps(ratio(row["predicted agg tok/s"], row["measured agg tok/s"]), *bounds(row["agg ratio"])), row
        assert overlaps(ratio(row["predicted e2e p95 s"], row["measured e2e p95 s"]), *bounds(row["e2e ratio"])), row
        assert row["measured rounds"] == "1"
        assert row["rounds' agg tok/s max/min"] == row["rounds' wall max/min"] == "1.000"  # one round
        # The truth with 2 slots decodes b = min(users, 2) sequences at solo / (1 + c*(b - 1)) each: no round's
        # aggregate (its prefills and HTTP included) exceeds that, and no request ends before its tokens at solo.
        b = min(int(row["users"]), SLOTS)
        assert bounds(row["measured agg tok/s"])[0] <= b * solo / (1 + contention * (b - 1)), row
        assert bounds(row["measured e2e p95 s"])[1] >= TOKENS / solo, row
