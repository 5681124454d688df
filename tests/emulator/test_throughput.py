"""The measurement in DESIGN.md, replayed against the emulator: N concurrent requests, 100 output
tokens, 8 distinct prompts, the m1 preset. Asserted on what the emulator recorded (the trace): which
requests decoded together, which waited for which, and the decode time the speed model gave each one.
How closely the wall clock follows that model is ``benchmarks/emulator_timing.py``'s to measure.

Every round is sent while the model loads (a load of ``GATE_S``): the requests then reach the engine in the
same loop turn, so those that got a slot decode in lockstep, and each one's modelled decode time follows
from the batch it was in: 100 steps at the batch's per-sequence rate, within the preset's 2% jitter.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest

from tests.emulator.conftest import HTTP, Trace, TracedEmulator
from tests.helpers import EmulatorProcess, poll

pytestmark = pytest.mark.integration

SPEED = 20
TOKENS = 100
GATE_S = 1.0  # the load every round is sent during: long enough for all its requests to arrive
JITTER = 0.02  # m1: each step's modelled duration is within 2% of the formula's
PROMPTS = [f"Prompt number {i}: explain how a queue of requests behaves under load." for i in range(8)]


def start(traced_emulator: TracedEmulator, num_parallel: int) -> tuple[EmulatorProcess, Trace]:
    """The m1 preset at ``SPEED`` with ``num_parallel`` slots and a load of ``GATE_S``."""
    return traced_emulator(preset="m1", speed=SPEED, num_parallel=num_parallel, seed=1,
                           tune=[f"load_s={GATE_S * SPEED}"])  # fmt: skip


def request(url: str, request_id: str, prompt: str) -> dict[str, Any]:
    """A non-streamed ``/api/generate`` of ``TOKENS`` tokens, traced as ``request_id``; its answer."""
    body = {"model": "llama3.2", "prompt": prompt, "stream": False, "options": {"num_predict": TOKENS}}
    return HTTP.post(url + "/api/generate", json=body, headers={"X-Request-Id": request_id}).json()


def gated_round(emu: EmulatorProcess, trace: Trace, n: int) -> list[dict[str, Any]]:
    """Load the model and send ``n`` concurrent requests while it loads; their trace lines, in slot order."""
    names = [f"r{i}" for i in range(n)]
    with ThreadPoolExecutor(n + 1) as pool:
        load = pool.submit(HTTP.post, emu.url + "/api/generate", json={"model": "llama3.2", "prompt": ""})
        poll(lambda: HTTP.get(emu.url + "/_emulator/state").json()["models"]["llama3.2:latest"]["loading"],
             "the load under way", interval=0.01)  # fmt: skip
        responses = list(pool.map(request, [emu.url] * n, names, [PROMPTS[i % 8] for i in range(n)]))
        assert load.result().json()["done_reason"] == "load"
    assert all(r["eval_count"] == TOKENS and r["done_reason"] == "length" for r in responses)
    rows = sorted(trace.rows(*names), key=lambda r: r["slot_acquired"])
    assert max(r["received"] for r in rows) < min(r["runner_acquired"] for r in rows), (
        f"a request arrived after the {GATE_S} s load: the round was not gated"
    )
    return rows


def decoded_together(rows: list[dict[str, Any]]) -> bool:
    """The requests were evaluated in one engine step and emitted their last tokens in one step."""
    return len({r["prefill_end"] for r in rows}) == 1 and len({r["last_token"] for r in rows}) == 1


def test_one_slot_queues_requests_at_solo_speed(traced_emulator: TracedEmulator) -> None:
    emu, trace = start(traced_emulator, num_parallel=1)
    rows = gated_round(emu, trace, 8)
    # the queue is a wait for the slot, not for the model: every request had the runner before the first ended
    assert all(r["runner_acquired"] < rows[0]["last_token"] for r in rows)
    for earlier, later in pairwise(rows):
        assert later["slot_acquired"] >= earlier["last_token"]  # one at a time: each waited for the one before
    # so each decoded alone, at solo speed: 24.6 tok/s (m1, one slot) x SPEED
    for r in rows:
        assert r["model_decode_s"] == pytest.approx(TOKENS / (24.6 * SPEED), rel=JITTER)
    assert HTTP.get(emu.url + "/_emulator/state").json()["models"]["llama3.2:latest"]["loads"] == 1


def test_four_slots_share_the_decoder(traced_emulator: TracedEmulator) -> None:
    emu, trace = start(traced_emulator, num_parallel=4)
    rows = gated_round(emu, trace, 8)
    first, second = rows[:4], rows[4:]
    # beyond four slots the queue is back: two rounds of four, the second after the first
    assert decoded_together(first) and decoded_together(second)
    assert min(r["slot_acquired"] for r in second) >= first[0]["last_token"]
    # four generating together: each at r(4) = 21.674 / (1 + 0.41 * 3) = 9.719 tok/s x SPEED, 0.45x solo,
    # an aggregate of 4 x 9.719 = 1.79x solo
    for r in rows:
        assert r["model_decode_s"] == pytest.approx(TOKENS / (9.719 * SPEED), rel=JITTER)
    # solo with four slots configured: 24.6 / (1 + 0.045 * 3) = 21.674 tok/s x SPEED
    request(emu.url, "solo", PROMPTS[0])
    (solo,) = trace.rows("solo")
    assert solo["model_decode_s"] == pytest.approx(TOKENS / (21.674 * SPEED), rel=JITTER)
