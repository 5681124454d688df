"""The seeds' sweep on a real inference engine: llama.cpp's server with Gemma 3 270M on this machine's CPU.

Assert inferred slot counts and ratios only: the machine is shared and noisy (±20 % between runs)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.loadgen.conftest import run_variants

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="needs the [real] extra"),
]


def test_real_server_one_slot_is_serial_and_four_slots_raise_throughput(tmp_path):
    def short(scenario: dict) -> None:
        scenario["load"]["levels"] = [1, 4, 8]  # solo, the four slots full, and beyond
        scenario["options"]["num_predict"] = 64

    real = run_variants(tmp_path, "real-sweep.yaml", short)
    one, four = real.curves["1-slot"], real.curves["4-slots"]
    assert real.targets["1-slot"]["slots"] == 1 and real.targets["4-slots"]["slots"] == 4
    # The server's own /metrics (busy slots, sampled during the run) is the third, direct estimate.
    assert str(real.targets["1-slot"]["server_metrics"]) == "1"
    assert str(real.targets["4-slots"]["server_metrics"]) == "4"
    assert real.targets["1-slot"]["serial"]
    # One slot: requests queue, so wall time grows ~N-fold while aggregate throughput stays flat.
    assert one.wall_s[8] / one.wall_s[1] > 5
    assert one.agg_tok_s[8] / one.agg_tok_s[1] == pytest.approx(1, abs=0.3)
    # Four slots: more aggregate throughput at 4 (~1.5x measured here), each request slower.
    assert four.agg_tok_s[4] / four.agg_tok_s[1] > 1.2
    assert four.per_req_tok_s[4] < 0.8 * four.per_req_tok_s[1]

    records = real.records("4-slots")
    assert records.server_eval_s.notna().all() and records.server_prompt_eval_s.notna().all()  # llama.cpp timings
    assert (records.output_tokens == 64).all()  # ignore_eos: exactly what was asked
