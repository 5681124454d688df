"""``--trace-file``: one JSON line per finished request, server-side times in order, modelled beside measured."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.emulator.conftest import HTTP, TRACE_EPS_S
from tests.helpers import start_emulator

pytestmark = pytest.mark.integration


def test_trace_lines(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    # A slow prefill (100 tok/s): a prefill step that would show if the engine ran it ahead of the model.
    emu = start_emulator(preset="m1", speed=10, tune=["prefill_tps=10"], trace_file=str(path))
    try:
        for stream in (True, False):
            body = {"model": "llama3.2", "prompt": "one two three", "stream": stream, "options": {"num_predict": 30}}
            HTTP.post(emu.url + "/api/generate", json=body)
        HTTP.get(emu.url + "/api/tags")
        HTTP.post(emu.url + "/api/generate", json={"model": "nope", "prompt": "x"})
    finally:
        assert emu.stop() == 0  # SIGTERM flushes the buffer
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["path"], r["status"], r["stream"]) for r in records] == [
        ("/api/generate", 200, True), ("/api/generate", 200, False), ("/api/tags", 200, False),
        ("/api/generate", 404, False),
    ]  # fmt: skip
    streamed, whole = records[0], records[1]
    assert streamed["received"] <= streamed["runner_acquired"] <= streamed["slot_acquired"]
    assert streamed["slot_acquired"] <= streamed["prefill_start"] <= streamed["prefill_end"] <= streamed["first_chunk"]
    assert streamed["first_chunk"] <= streamed["last_token"] <= streamed["last_chunk"] <= time.time()
    load_s = 1.2 / 10  # m1's load time at speed 10
    assert streamed["runner_acquired"] - streamed["received"] > 0.85 * load_s  # the first request loaded the model
    for r in (streamed, whole):
        assert r["eval_count"] == 30 and r["done_reason"] == "length"
        assert r["model_decode_s"] == pytest.approx(30 / 246, rel=0.05)  # 30 tokens at 24.6 x 10 tok/s, +-2% jitter
        # the measured durations are the engine's step boundaries...
        assert r["prompt_eval_s"] == pytest.approx(r["prefill_end"] - r["prefill_start"], abs=TRACE_EPS_S)
        assert r["eval_s"] == pytest.approx(r["last_token"] - r["prefill_end"], abs=TRACE_EPS_S)
        # ...which never come before the model's: steps run on deadlines (how closely they follow the model is
        # benchmarks/emulator_timing.py's to measure)
        assert r["prompt_eval_s"] >= r["model_prefill_s"] - TRACE_EPS_S
        assert r["last_token"] - r["prefill_start"] >= r["model_prefill_s"] + r["model_decode_s"] - TRACE_EPS_S
    assert records[3]["error"] == "model 'nope' not found"
