"""The emulator's prompt cache: what a slot keeps, how much of the next prompt it saves, which slot a request
takes, and what the API reports. Token counts are worked out by hand with the m1 preset's estimates: a text is
``max(ceil(words * 1.3), ceil(chars / 4))`` tokens; a templated prompt is 1 start token, per message a 2-token
header, its text and a 2-token end of turn, then the 2-token header of the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.presets import get_preset
from emulator.prompt import Prompt, chat_prompt, generate_prompt
from emulator.prompt_cache import PromptCache
from tests.emulator.conftest import HTTP, TracedEmulator

M1 = get_preset("m1")
SYSTEM = {"role": "system", "content": "You are terse."}  # 3 words: max(ceil(3.9), ceil(14 / 4)) = 4 tokens
USER = {"role": "user", "content": "hello world how are you"}  # max(ceil(6.5), ceil(23 / 4)) = 7 tokens
ANSWER = "the model answers"  # max(ceil(3.9), ceil(17 / 4)) = 5 tokens


def chat(*messages: dict[str, str]) -> Prompt:
    return chat_prompt(list(messages), None, M1)


def test_a_chat_prompt_is_laid_out_as_a_template_lays_it_out():
    prompt = chat(SYSTEM, USER)
    # start 1 + system (2 + 4 + 2) + user (2 + 7 + 2) + answer header 2 = 22 = 3 + 4 + 4 + 4 + 7
    assert prompt.tokens == 22
    assert [p.tokens for p in prompt.pieces] == [1, 8, 11, 2]
    assert prompt.first(21).tokens == 20  # whole pieces only: the answer header would make 22


def test_the_same_prompt_again_evaluates_only_its_last_token():
    cache = PromptCache(1, M1)
    prompt = chat(SYSTEM, USER)
    assert cache.take(prompt) == (0, 0)  # an empty slot
    cache.release(0, prompt.answered(ANSWER, M1))
    # the slot holds the 22 prompt tokens (its answer after the answer header): all 22 are shared, and the last
    # is evaluated again for the first output token: 21 cached
    assert cache.take(prompt) == (0, 21)


def test_the_next_turn_evaluates_the_end_of_the_answer_and_the_new_message():
    cache = PromptCache(1, M1)
    first = chat(SYSTEM, USER)
    cache.take(first)
    cache.release(0, first.answered(ANSWER, M1))
    second = chat(SYSTEM, USER, {"role": "assistant", "content": ANSWER}, {"role": "user", "content": "and then"})
    # 22 + assistant (2 + 5 + 2) + user (2 + max(ceil(2.6), ceil(8 / 4)) = 3 + 2) = 22 + 9 + 7 = 38
    assert second.tokens == 38
    # shared: start, system and user (20), the answer's header and text (2 + 5): 27; evaluated 11: the answer's
    # end of turn (2), the new message (7) and the answer header (2)
    assert cache.take(second) == (0, 27)


def test_a_shared_leading_document_is_cached_up_to_where_the_prompts_part():
    cache = PromptCache(1, M1)
    one = generate_prompt("alpha beta gamma delta first question", "", "", False, (), (), M1)
    two = generate_prompt("alpha beta gamma delta second question", "", "", False, (), (), M1)
    # 6 words, 38 chars: max(ceil(7.8), ceil(9.5)) = 10 text tokens; 1 + (2 + 10 + 2) + 2 = 17
    assert two.tokens == 17
    cache.take(one)
    cache.release(0, one.answered(ANSWER, M1))
    # start 1 + the user header 2 + "alpha beta gamma delta" (max(ceil(5.2), ceil(22 / 4)) = 6) = 9
    assert cache.take(two) == (0, 9)


def test_a_request_takes_the_free_slot_with_the_longest_shared_prefix():
    cache = PromptCache(2, M1)
    a = chat(USER)  # 1 + 11 + 2 = 14
    b = chat({"role": "user", "content": "something else entirely"})  # 1 + (2 + max(4, ceil(23 / 4)) + 2) + 2 = 13
    assert cache.take(a) == (0, 0)  # both empty: the first
    assert cache.take(b) == (1, 0)  # slot 0 is busy
    cache.release(0, a.answered(ANSWER, M1))
    cache.release(1, b.answered(ANSWER, M1))
    # slot 0 shares the start and the user header with b (3), slot 1 all of b's 13: slot 1, 12 cached
    assert cache.take(b) == (1, 12)
    assert cache.take(a) == (0, 13)  # slot 1 is busy; slot 0 holds a
    cache.release(0, a)
    cache.release(1, b)
    c = chat({"role": "user", "content": "a third one"})
    assert cache.take(c) == (0, 3)  # both share 3: the first


def test_a_cache_turned_off_or_a_truncated_prompt_saves_nothing():
    prompt = chat(SYSTEM, USER)
    off = PromptCache(1, M1, enabled=False)
    off.take(prompt)
    off.release(0, prompt.answered(ANSWER, M1))
    assert off.take(prompt) == (0, 0)
    # truncated to num_ctx 10: keep 4, block (10 - 4) // 2 = 3, erased (22 - 4 - 3) // 3 = 5 blocks: 22 - 15 = 7
    truncated = prompt.truncated(10, 4)
    assert (truncated.tokens, truncated.pieces) == (7, ())
    cache = PromptCache(1, M1)
    cache.take(truncated)
    cache.release(0, truncated.answered(ANSWER, M1))
    assert cache.take(truncated) == (0, 0)


# --- over the wire ---------------------------------------------------------------------------------------------
#: 30 words, 209 chars: max(ceil(39), ceil(209 / 4)) = 53 tokens
DOCUMENT = " ".join(["shared"] * 30)
PREFILL_TPS = 50  # tok/s: a whole prompt takes over a second, its last token 20 ms
FLAGS = {"preset": "m1", "tune": ["jitter=0", f"prefill_tps={PREFILL_TPS}"], "num_parallel": 2}


def generate(url: str, prompt: str, request_id: str, **extra: object) -> dict:
    body = {"model": "llama3.2", "prompt": prompt, "stream": False, "options": {"num_predict": 4}, **extra}
    response = HTTP.post(url + "/api/generate", json=body, headers={"X-Request-Id": request_id})
    response.raise_for_status()
    return response.json()


@pytest.fixture
def cached_emulator(traced_emulator: TracedEmulator) -> Iterator:
    emu, trace = traced_emulator(**FLAGS)
    generate(emu.url, "", "load")  # the load, out of the way: only the prompts below are timed
    yield emu, trace


@pytest.mark.integration
def test_a_repeated_prompt_reports_its_whole_count_and_times_only_its_last_token(cached_emulator):
    emu, trace = cached_emulator
    prompt = f"{DOCUMENT} and a question"
    tokens = generate_prompt(prompt, "", "", False, (), (), M1).tokens
    first, again = generate(emu.url, prompt, "first"), generate(emu.url, prompt, "again")
    assert first["prompt_eval_count"] == again["prompt_eval_count"] == tokens  # Ollama counts cached tokens too
    rows = trace.rows("first", "again")
    assert [r["cached_tokens"] for r in rows] == [0, tokens - 1]
    # the modelled prefill, alone in its engine step: every token, then the last one only
    assert rows[0]["model_prefill_s"] == pytest.approx(tokens / PREFILL_TPS)
    assert rows[1]["model_prefill_s"] == pytest.approx(1 / PREFILL_TPS)
    # prompt_eval_duration is the measured prefill, never shorter than the model's; the hit's is shorter than the
    # miss's modelled prefill by the tokens - 1 it did not evaluate (1.7 s here)
    assert again["prompt_eval_duration"] / 1e9 == pytest.approx(rows[1]["prompt_eval_s"], abs=1e-6)
    assert rows[1]["model_prefill_s"] <= again["prompt_eval_duration"] / 1e9 < rows[0]["model_prefill_s"]


@pytest.mark.integration
def test_openai_usage_counts_the_whole_prompt(cached_emulator):
    emu, trace = cached_emulator
    body = {"model": "llama3.2", "messages": [SYSTEM, USER], "max_tokens": 4}
    usages = [HTTP.post(emu.url + "/v1/chat/completions", json=body, headers={"X-Request-Id": rid}).json()["usage"]
              for rid in ("v1-first", "v1-again")]
    assert [u["prompt_tokens"] for u in usages] == [22, 22]  # chat(SYSTEM, USER) above
    assert [r["cached_tokens"] for r in trace.rows("v1-first", "v1-again")] == [0, 21]


@pytest.mark.integration
def test_a_request_goes_to_the_slot_holding_its_prefix_not_the_first_free_one(cached_emulator):
    emu, trace = cached_emulator
    a_doc = f"{DOCUMENT} apples?"
    stream = {"model": "llama3.2", "prompt": "an unrelated long answer", "options": {"num_predict": -1}}
    with HTTP.stream("POST", emu.url + "/api/generate", json=stream, headers={"X-Request-Id": "busy"}) as busy:
        lines = busy.iter_lines()  # kept: a dropped iterator closes the response
        next(lines)  # generating: it holds slot 0 until it is cut off below
        generate(emu.url, a_doc, "a")  # so this one takes slot 1
    trace.rows("busy")  # written once the busy request was cut off and its slot freed
    # both slots free: the shared document sends the next prompt to slot 1, where a is
    follow_up = generate(emu.url, f"{DOCUMENT} pears?", "follow-up")
    rows = trace.rows("a", "follow-up")
    assert [r["cache_slot"] for r in rows] == [1, 1]
    # start 1 + user header 2 + the 30 shared words (max(ceil(39), ceil(209 / 4)) = 53) = 56
    assert rows[1]["cached_tokens"] == 56
    assert follow_up["prompt_eval_count"] == generate_prompt(f"{DOCUMENT} pears?", "", "", False, (), (), M1).tokens


@pytest.mark.integration
def test_the_switch_turns_the_cache_off(traced_emulator: TracedEmulator):
    emu, trace = traced_emulator(**FLAGS, prompt_cache="off")
    for rid in ("off-1", "off-2"):
        generate(emu.url, "one two three", rid)
    assert [r["cached_tokens"] for r in trace.rows("off-1", "off-2")] == [0, 0]
