"""The fitter recovers a preset it has never seen, and whatif predicts from the twin what the preset does.

``benchmarks/whatif_accuracy.py``'s emulator mode, as a test: a preset drawn from a seed (the truth, jitter 0)
is served by the emulator at 1, 2 and 4 slots; the runs, scaled back to the truth's clock, are fitted from the
1- and 4-slot runs. Every parameter the runs determine must come back within 10% of the truth, and the 2-slot
p95 e2e that whatif predicts from the twin within 10% of the measured 2-slot run's, at every level. The truth
is an emulator, so its speeds are exact but for its step lag (about a millisecond), which the benchmark keeps
to a few percent of its shortest step; asserted is only what the records say."""

from __future__ import annotations

import pytest

from benchmarks.whatif_accuracy import EMULATOR_LEVELS, emulator_accuracy

pytestmark = pytest.mark.integration

SEED = 1
ROUNDS = 1  # jitter 0: one round of each level already decodes every batch the fit needs
TOKENS = 32  # below the truth's shortest natural output (m1: 150), so every request stops at exactly this many
TOLERANCE = 0.10
#: What the runs determine: every request hits num_predict, so the natural output range stays unknown.
DETERMINED = {"solo_tps", "parallel_penalty", "contention", "prefill_tps", "load_s"}


@pytest.mark.timeout(300)
def test_the_fit_recovers_a_preset_it_never_saw_and_whatif_predicts_it(tmp_path):
    result = emulator_accuracy(SEED, ROUNDS, TOKENS, tmp_path)
    determined = {p.name: p for p in result.parameters if p.value is not None}
    assert set(determined) == DETERMINED, result.parameters
    for p in determined.values():
        assert p.ratio == pytest.approx(1, abs=TOLERANCE), p
    assert [level.users for level in result.two_slots] == list(EMULATOR_LEVELS)
    for level in result.two_slots:
        assert level.e2e_ratio == pytest.approx(1, abs=TOLERANCE), level
