"""The seeds' sweep on a real inference engine: llama.cpp's server with Gemma 3 270M on this machine's CPU.

Assert inferred slot counts and ratios only: the machine is shared and noisy (±20 % between runs)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="needs the [real] extra"),
]


def test_real_server_one_slot_is_serial_and_four_slots_raise_throughput(tmp_path):
    scenario = yaml.safe_load((REPO / "scenarios" / "real-sweep.yaml").read_text())
    scenario["load"]["levels"] = [1, 4, 8]  # a short sweep: solo, the four slots full, and beyond
    scenario["options"]["num_predict"] = 64
    scenario["workloads"][0]["prompts"] = {"inline": scenario["workloads"][0]["prompts"]}
    path = tmp_path / "real-sweep.yaml"
    path.write_text(yaml.safe_dump(scenario))
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "locustfiles", "run", str(path), "--results-dir", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    (compare,) = results.glob("*-compare/compare.json")
    summary = json.loads(compare.read_text())
    targets = {t["run"]: t for t in summary["targets"]}
    curves = pd.DataFrame(summary["curves"])
    one, four = curves[curves.run == "1-slot"].set_index("x"), curves[curves.run == "4-slots"].set_index("x")
    assert targets["1-slot"]["slots"] == 1 and targets["4-slots"]["slots"] == 4
    assert targets["1-slot"]["serial"]
    # One slot: requests queue, so wall time grows ~N-fold while aggregate throughput stays flat.
    assert one.wall_s[8] / one.wall_s[1] > 5
    assert one.agg_tok_s[8] / one.agg_tok_s[1] == pytest.approx(1, abs=0.3)
    # Four slots: more aggregate throughput at 4 (~1.5x measured here), each request slower.
    assert four.agg_tok_s[4] / four.agg_tok_s[1] > 1.2
    assert four.per_req_tok_s[4] < 0.8 * four.per_req_tok_s[1]

    (run_dir,) = results.glob("*-4-slots")
    records = pd.read_csv(run_dir / "requests.csv")
    assert records.server_eval_s.notna().all() and records.server_prompt_eval_s.notna().all()  # llama.cpp timings
    assert (records.output_tokens == 64).all()  # ignore_eos: exactly what was asked
