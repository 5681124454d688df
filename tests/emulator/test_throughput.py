"""The measurement in DESIGN.md, replayed against the emulator: N concurrent requests, 100 output
tokens, 8 distinct prompts. Ratios only (2 noisy cores); ``--speed`` makes it quick."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from statistics import mean

import pytest

from tests.emulator.conftest import HTTP
from tests.helpers import start_emulator

pytestmark = pytest.mark.integration

SPEED = 20
PROMPTS = [f"Prompt number {i}: explain how a queue of requests behaves under load." for i in range(8)]


def _one(url: str, prompt: str) -> dict:
    body = {"model": "llama3.2", "prompt": prompt, "stream": False, "options": {"num_predict": 100}}
    return HTTP.post(url + "/api/generate", json=body).json()


def _round(url: str, n: int) -> tuple[float, list[dict]]:
    """Wall time and final responses of ``n`` concurrent requests."""
    with ThreadPoolExecutor(n) as pool:
        start = time.monotonic()
        results = list(pool.map(lambda i: _one(url, PROMPTS[i % 8]), range(n)))
        return time.monotonic() - start, results


def _rate(result: dict) -> float:
    """Per-request decode speed, tokens per second: eval_count / eval_duration."""
    return result["eval_count"] / (result["eval_duration"] / 1e9)


@pytest.fixture
def sweep():
    procs = []

    def run(num_parallel: int) -> dict[int, tuple[float, list[dict]]]:
        emu = start_emulator(preset="m1", speed=SPEED, num_parallel=num_parallel, seed=1)
        procs.append(emu)
        _one(emu.url, "warm up: load the model")
        return {n: _round(emu.url, n) for n in (1, 2, 4, 8)}

    yield run
    for emu in procs:
        emu.stop()


def test_one_slot_queues_requests_at_solo_speed(sweep):
    rounds = sweep(1)
    assert all(r["eval_count"] == 100 and r["done_reason"] == "length" for _, rs in rounds.values() for r in rs)
    # wall time grows with concurrency: 8 requests take 8 times as long as one (within 10%)
    assert rounds[8][0] / rounds[1][0] == pytest.approx(8, rel=0.10)
    # ...while each request still decodes at solo speed: 24.6 tok/s (m1, one slot) x SPEED
    for n in (1, 8):
        assert mean(_rate(r) for r in rounds[n][1]) == pytest.approx(24.6 * SPEED, rel=0.05)
    # the queueing shows up as slot wait (total - load - prompt_eval - eval), growing request by request
    waits = sorted((r["total_duration"] - r["load_duration"] - r["prompt_eval_duration"] - r["eval_duration"]) / 1e9
                   for r in rounds[8][1])  # fmt: skip
    solo_s = 100 / (24.6 * SPEED)
    assert waits[-1] == pytest.approx(7 * solo_s, rel=0.15)
    assert max(r["load_duration"] for r in rounds[8][1]) / 1e9 < 0.1 * solo_s  # waiting for a slot is not load time


def test_four_slots_share_the_decoder(sweep):
    rounds = sweep(4)
    aggregate = {n: sum(r["eval_count"] for r in rs) / wall for n, (wall, rs) in rounds.items()}
    per_request = {n: mean(_rate(r) for r in rs) for n, (_, rs) in rounds.items()}
    # solo with four slots configured: 24.6 / (1 + 0.045 * 3) = 21.7 tok/s, x SPEED
    assert per_request[1] == pytest.approx(21.7 * SPEED, rel=0.05)
    # four generating together: aggregate 4 / (1 + 0.41 * 3) = 1.79x, each at 1 / 2.23 = 0.45x
    assert aggregate[4] / aggregate[1] == pytest.approx(1.8, rel=0.15)
    assert per_request[4] / per_request[1] == pytest.approx(0.45, rel=0.10)
    # beyond four slots the queue is back: 8 requests take two rounds of four
    assert rounds[8][0] / rounds[4][0] == pytest.approx(2, rel=0.15)
