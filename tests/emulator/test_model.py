"""The pure parts: the speed model's formulas, token estimates, output plans, fault specs.
Expected values are worked out by hand in the comments."""

from __future__ import annotations

import random

import pytest

from emulator.config import ConfigError
from emulator.faults import FaultInjector, parse_spec
from emulator.inference import plan_output
from emulator.presets import get_preset
from emulator.prompt import chat_prompt, generate_prompt
from emulator.text import estimate_tokens, truncate_prompt
from emulator.throughput import Throughput

M1 = get_preset("m1")


def test_m1_four_slots():
    tp = Throughput(M1, speed=1, num_parallel=4, model_speed=1, seed=0)
    # solo(4) = 24.6 / (1 + 0.045 * 3) = 24.6 / 1.135 = 21.674
    assert tp.solo_tps == pytest.approx(21.674, abs=1e-3)
    # r(4) = 21.674 / (1 + 0.41 * 3) = 21.674 / 2.23 = 9.719; aggregate 4 * 9.719 = 38.88 = 1.79x solo
    assert tp.sequence_tps(4) == pytest.approx(9.719, abs=1e-3)
    assert 4 * tp.sequence_tps(4) / tp.solo_tps == pytest.approx(1.794, abs=1e-3)
    # one step with 2 decoding: 1 / r(2) = 1.41 / 21.674 = 0.06505 s
    assert tp.decode_step_s(2) == pytest.approx(0.06505, abs=1e-5)
    assert tp.decode_step_s(0) == 0


def test_speed_scales_rates_and_times():
    tp = Throughput(M1, speed=4, num_parallel=1, model_speed=0.5, seed=0)
    assert tp.solo_tps == pytest.approx(24.6 * 4 * 0.5)  # 49.2
    assert tp.prefill_s(350) == pytest.approx(350 / (350 * 2))  # 0.5 s
    assert (tp.load_s, tp.fit_s) == pytest.approx((1.2 / 4, 0.1 / 4))  # the model's speed does not load faster


def test_jitter_is_seeded_and_bounded():
    a = [Throughput(M1, 1, 1, 1, seed=7).jittered(1.0) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    tp = Throughput(M1, 1, 1, 1, seed=7)
    draws = [tp.jittered(1.0) for _ in range(1000)]
    assert min(draws) >= 0.98 and max(draws) <= 1.02 and len(set(draws)) > 900  # m1 jitter = 2%


def test_token_estimates():
    # 5 words * 1.3 = 6.5 -> 7; 23 chars / 4 = 5.75 -> 6; the larger wins
    assert estimate_tokens("hello world how are you", M1) == 7
    assert estimate_tokens("x" * 40, M1) == 10  # one 40-char word: chars / 4
    # prompt overhead 3 + message overhead 4 + 7
    assert chat_prompt([{"role": "user", "content": "hello world how are you"}], None, M1).tokens == 14
    # raw: the text alone; templated: + 4 + 3, a system message + 4 + its own tokens (2 words -> 3)
    assert generate_prompt("hello world how are you", "", "", True, (), (), M1).tokens == 7
    assert generate_prompt("hello world how are you", "be brief", "", False, (), (), M1).tokens == 7 + 7 + 4 + 3


def test_truncation_keeps_num_keep_and_drops_blocks():
    assert truncate_prompt(4000, 4096, 4) == 4000
    # keep 4; block = (4096 - 4) // 2 = 2046; erased = (5000 - 4 - 2046) // 2046 = 1 -> 5000 - 2046 = 2954
    assert truncate_prompt(5000, 4096, 4) == 2954
    # erased = (20000 - 4 - 2046) // 2046 = 8 -> 20000 - 16368 = 3632
    assert truncate_prompt(20000, 4096, 4) == 3632


def test_output_lengths():
    rng = random.Random(1)
    exact = plan_output(rng, M1, num_predict=100, num_ctx=4096, think=False)
    assert (exact.n_tokens, exact.done_reason) == (100, "length")  # below min_output 150: exactly num_predict
    natural = plan_output(random.Random(1), M1, num_predict=-1, num_ctx=4096, think=False)
    assert 150 <= natural.n_tokens <= 600 and natural.done_reason == "stop"
    assert plan_output(random.Random(1), M1, 5000, 4096, False).n_tokens == natural.n_tokens  # same seed, same stop
    thinking = plan_output(random.Random(1), M1, 100, 4096, think=True)
    assert thinking.n_think == 30 and thinking.n_tokens == 100  # 30% of 100 is thinking
    tiny_ctx = plan_output(random.Random(1), M1, -1, num_ctx=4, think=False)
    assert (tiny_ctx.n_tokens, tiny_ctx.done_reason) == (40, "length")  # open-ended: capped at 10 x num_ctx


def test_tool_call_plan():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"properties": {
        "n": {"type": "integer"}, "unit": {"type": "string", "enum": ["c", "f"]}}}}}]  # fmt: skip
    plan = plan_output(random.Random(3), M1, -1, 4096, False, tools)
    (call,) = plan.tool_calls
    assert call["function"]["name"] == "f" and call["function"]["arguments"]["unit"] == "c"
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    assert plan.token_ids == [] and plan.n_hidden > 0 and plan.done_reason == "stop"
    squeezed = plan_output(random.Random(3), M1, 2, 4096, False, tools)  # no room to write the call
    assert not squeezed.tool_calls and squeezed.n_tokens == 2


def test_fault_specs():
    (reset, slow) = parse_spec("reset:p=0.25:after=3,slow_first_byte:seconds=2:path=/api/tags")
    assert (reset.kind, reset.p, reset.after) == ("reset", 0.25, 3)
    assert (slow.seconds, slow.matches("/api/tags"), slow.matches("/api/chat")) == (2.0, True, False)
    assert reset.matches("/api/chat") and not reset.matches("/api/tags")  # default: inference paths only
    assert [f.kind for f in parse_spec('[{"kind": "http_500", "every": 2}]')] == ["http_500"]
    for bad in ("boom", "reset:p=2", "reset:after", "reset:color=red"):
        with pytest.raises(ConfigError):
            parse_spec(bad)
    every = FaultInjector("http_503:every=2", seed=0)
    assert [bool(every.pick("/api/chat")) for _ in range(4)] == [False, True, False, True]
