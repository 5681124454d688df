"""Conversation datasets: both formats read into exchanges, streamed, filtered, sampled; every malformed
entry refused with one line naming the file, the line and the field, or skipped and counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest

from loadgen.scenario import conversations as conversations_module
from loadgen.scenario import jsonstream
from loadgen.scenario.conversations import Conversation, Conversations, Counts, Exchange
from loadgen.scenario.jsonstream import read_items
from loadgen.scenario.scenario import Scenario, ScenarioError, check, load_scenario

REPO = Path(__file__).resolve().parents[2]


def sharegpt(*turns: tuple[str, str], **extra: Any) -> dict[str, Any]:
    """A ShareGPT entry from (from, value) pairs."""
    return {**extra, "conversations": [{"from": who, "value": text} for who, text in turns]}


def openai(*turns: tuple[str, str]) -> dict[str, Any]:
    """An OpenAI fine-tuning row from (role, content) pairs."""
    return {"messages": [{"role": role, "content": text} for role, text in turns]}


def jsonl(path: Path, *rows: Any) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read(written: dict[str, Any] | str, base_dir: Path) -> Conversations:
    return Conversations.model_validate(written, context={"base_dir": base_dir})


def users(dataset: Conversations) -> list[list[str]]:
    return [[exchange.user for exchange in conversation.exchanges] for conversation in dataset.items]


# -- formats ----------------------------------------------------------------------------------------


def test_a_sharegpt_array_becomes_a_system_message_and_exchanges(tmp_path: Path):
    entry = sharegpt(("system", "Be brief."), ("human", "hi"), ("gpt", "hello"), ("human", "bye"), id="a_0")
    (tmp_path / "d.json").write_text(json.dumps([entry], indent=2))
    (conversation,) = read({"file": "d.json"}, tmp_path).items
    assert conversation == Conversation("Be brief.", (Exchange("hi", "hello"), Exchange("bye", None)))


@pytest.mark.parametrize(("user", "assistant"), [("human", "gpt"), ("user", "chatgpt"), ("human", "bing"),
                                                 ("user", "bard"), ("user", "assistant")])
def test_every_speaker_name_of_sharegpt_copies_is_mapped(tmp_path: Path, user: str, assistant: str):
    jsonl(tmp_path / "d.jsonl", sharegpt((user, "q"), (assistant, "a")))
    assert read("d.jsonl", tmp_path).items == (Conversation(None, (Exchange("q", "a"),)),)


def test_openai_messages_jsonl(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", openai(("system", "S"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"),
                                       ("assistant", "a2")))
    (conversation,) = read({"file": "d.jsonl", "format": "openai"}, tmp_path).items
    assert conversation == Conversation("S", (Exchange("u1", "a1"), Exchange("u2", "a2")))


def test_role_content_turns_and_turns_stored_as_json_strings_in_sharegpt(tmp_path: Path):
    turns = [{"role": "user", "content": "q"}, json.dumps({"from": "gpt", "value": "a"})]
    jsonl(tmp_path / "d.jsonl", {"conversations": turns})
    assert read("d.jsonl", tmp_path).items == (Conversation(None, (Exchange("q", "a"),)),)


def test_runs_of_one_speaker_are_joined_and_a_leading_answer_is_dropped(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", sharegpt(("gpt", "hello, how can I help?"), ("human", "one"), ("human", "two"),
                                         ("gpt", "a"), ("gpt", "b"), ("human", "three")))
    (conversation,) = read("d.jsonl", tmp_path).items
    assert conversation.exchanges == (Exchange("one\n\ntwo", "a\n\nb"), Exchange("three", None))


def test_auto_tells_the_formats_apart_line_by_line(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", sharegpt(("human", "s")), openai(("user", "o")))
    assert users(read("d.jsonl", tmp_path)) == [["s"], ["o"]]


def test_the_shipped_samples_read_as_written(tmp_path: Path):
    data = REPO / "scenarios" / "data"
    assert [len(c.exchanges) for c in read("chat-sharegpt.json", data).items] == [3, 2, 2, 4, 2]
    assert [len(c.exchanges) for c in read("chat-openai.jsonl", data).items] == [2, 3, 2, 2]


# -- streaming ---------------------------------------------------------------------------------------


def test_an_array_split_across_read_buffers_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    entries = [sharegpt(("human", f"question {i} é ü"), ("gpt", "answer " * i)) for i in range(40)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(entries, indent=1, ensure_ascii=False), encoding="utf-8")
    whole = [item.value for item in read_items(path)]
    monkeypatch.setattr(jsonstream, "CHUNK", 7)  # cuts entries, strings, numbers and two-byte characters
    assert [item.value for item in read_items(path)] == whole == entries


def test_entries_arrive_before_the_file_is_read_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    opened: list[IO[bytes]] = []
    real_open = Path.open

    def tracking_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(path, *args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(Path, "open", tracking_open)
    monkeypatch.setattr(jsonstream, "CHUNK", 256)
    entry = sharegpt(("human", "q" * 50), ("gpt", "a" * 50))  # 100 bytes and more per entry
    array, lines = tmp_path / "d.json", tmp_path / "d.jsonl"
    array.write_text(json.dumps([entry] * 1000))
    jsonl(lines, *[entry] * 1000)
    for path in (array, lines):
        items = read_items(path)
        assert next(items).value == entry
        assert opened[-1].tell() < path.stat().st_size / 10  # only the start was read (JSONL: one 8 KiB buffer)
        items.close()


def test_array_entries_carry_the_line_they_start_on(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"a": 1},\n\n  {"b":\n    2}, {"c": 3}\n]\n')
    assert [(item.line, item.value) for item in read_items(path)] == [(2, {"a": 1}), (4, {"b": 2}), (5, {"c": 3})]


def test_an_empty_array_has_no_conversation(tmp_path: Path):
    (tmp_path / "d.json").write_text(" [ ] ")
    with pytest.raises(ValueError, match=r"no conversation to replay: 0 conversations kept of 0 entries"):
        read("d.json", tmp_path)


# -- filters and sampling ------------------------------------------------------------------------------


def test_filters_by_user_turns_and_prompt_words(tmp_path: Path):
    jsonl(
        tmp_path / "d.jsonl",
        sharegpt(("human", "one")),  # 1 user turn
        sharegpt(("human", "a b"), ("gpt", "c d e"), ("human", "f")),  # 2 turns; last prompt 2 + 3 + 1 = 6 words
        # 2 turns; last prompt: system 2 + users 2 + 4 + answer 3 = 11 words (the last answer is not in it)
        sharegpt(("system", "s t"), ("human", "a b"), ("gpt", "c d e"), ("human", "f g h i"), ("gpt", "x " * 50)),
        sharegpt(("human", "1"), ("gpt", "2"), ("human", "3"), ("gpt", "4"), ("human", "5")),  # 3 turns, 5 words
    )
    assert [c.prompt_words for c in read("d.jsonl", tmp_path).items] == [1, 6, 11, 5]
    kept = read({"file": "d.jsonl", "user_turns": {"min": 2, "max": 2}, "prompt_words": {"max": 10}}, tmp_path)
    assert users(kept) == [["a b", "f"]]
    assert kept.counts == Counts(entries=4, bad=0, filtered=3, kept=1)


def test_a_seeded_sample_is_the_same_on_every_machine_and_kept_in_file_order(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", *[sharegpt(("human", str(i))) for i in range(10)])

    def sample(seed: int, size: int = 3) -> list[str]:
        return [turns[0] for turns in users(read({"file": "d.jsonl", "sample": size, "seed": seed}, tmp_path))]

    # Algorithm R: keep 0, 1, 2; conversation i (3..9) replaces slot randrange(i + 1) when that is < 3.
    # random.Random(0) draws 3, 3, 0, 2, 7, 6, 4 (the same on every platform): 5 -> slot 0, 6 -> slot 2.
    assert sample(0) == ["1", "5", "6"]
    # random.Random(1) draws 1, 4, 0, 2, 1, 7, 7: 3 -> slot 1, 5 -> slot 0, 6 -> slot 2, 7 -> slot 1.
    assert sample(1) == ["5", "6", "7"]
    assert sample(0) == sample(0)
    assert sample(7, size=10) == sample(8, size=12) == [str(i) for i in range(10)]  # all of them, in order


def test_the_sample_is_uniform(tmp_path: Path):
    # Each of 10 conversations is in a sample of 3 with probability 3/10: over 2000 seeds, 600 times
    # (binomial sd sqrt(2000 * 0.3 * 0.7) = 20.5; the bounds are about 5 sd).
    jsonl(tmp_path / "d.jsonl", *[sharegpt(("human", str(i))) for i in range(10)])
    dataset = read("d.jsonl", tmp_path)
    counts: Counter[str] = Counter()
    for seed in range(2000):
        sample = conversations_module._Sample(3, conversations_module.random.Random(seed))
        for conversation in dataset.items:
            sample.add(conversation)
        counts.update(c.exchanges[0].user for c in sample.in_file_order())
    assert set(counts) == {str(i) for i in range(10)}
    assert all(500 < count < 700 for count in counts.values()), counts


def test_the_size_cap_applies_to_the_sample_not_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    jsonl(tmp_path / "d.jsonl", *[sharegpt(("human", "x" * 100)) for _ in range(10)])  # 1000 bytes of text
    monkeypatch.setattr(conversations_module, "MAX_PROMPT_FILE_BYTES", 500)
    assert len(read({"file": "d.jsonl", "sample": 5}, tmp_path).items) == 5  # 500 bytes: within
    with pytest.raises(ValueError, match="the conversations kept hold more than"):
        read({"file": "d.jsonl", "sample": 6}, tmp_path)


# -- num_predict from the recorded answer ----------------------------------------------------------------


def test_num_predict_is_estimated_from_the_answers_words(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", sharegpt(("human", "q"), ("gpt", "w " * 10), ("human", "q"), ("gpt", "w " * 7),
                                         ("human", "q"), ("gpt", ""), ("human", "last")))
    dataset = read({"file": "d.jsonl", "num_predict": "from_answer_words"}, tmp_path)
    # 10 words * 1.3 = 13; 7 * 1.3 = 9.1 -> 10; an empty answer -> at least 1; no answer -> the workload's
    assert [dataset.num_predict_for(e) for e in dataset.items[0].exchanges] == [13, 10, 1, None]
    assert read("d.jsonl", tmp_path).num_predict_for(dataset.items[0].exchanges[0]) is None  # not asked


# -- malformed entries: one line each --------------------------------------------------------------------


def write_scenario(tmp_path: Path, conversations: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nmodel: m\nworkloads:\n  - name: chat\n    kind: chat\n"
                    f"    conversations: {conversations}\n")
    return path


GOOD = json.dumps(sharegpt(("human", "fine"), ("gpt", "yes")))
BAD_LINES = [
    (json.dumps(sharegpt(("human", "a"), ("gpt", "b"), ("robot", "c"))),
     "conversations[2].from: must be one of human, user, gpt, chatgpt, bing, bard, assistant, system, got 'robot'"),
    (json.dumps({"conversations": [{"from": "human"}]}), "conversations[0].value: is required"),
    (json.dumps({"conversations": [{"from": "human", "value": 3}]}), "conversations[0].value: must be a string, got 3"),
    (json.dumps({"conversations": [{"value": "x"}]}), "conversations[0].from: must be one of human, user"),
    (json.dumps({"conversations": [{"from": ["human"], "value": "x"}]}),
     "conversations[0].from: must be one of human, user, gpt, chatgpt, bing, bard, assistant, system, got a list"),
    (json.dumps(sharegpt(("human", "  "))), "conversations[0].value: must not be blank in a user turn"),
    (json.dumps(sharegpt(("human", "a"), ("system", "b"))), "conversations[1].from: a system turn may only come first"),
    (json.dumps(sharegpt(("system", "s"), ("gpt", "b"))), "conversations: has no user turn"),
    (json.dumps({"conversations": []}), "conversations: must be a non-empty list of turns, got a list"),
    (json.dumps({"conversations": "hi"}), "conversations: must be a non-empty list of turns, got 'hi'"),
    (json.dumps({"conversations": [7]}), 'conversations[0]: must be an object with "from" and "value"'),
    (json.dumps({"conversations": ["{not json"]}), "conversations[0]: must be a turn object, got a string"),
    (json.dumps({"messages": [{"role": "tool", "content": "x"}]}), "messages[0].role: must be one of human"),
    (json.dumps({"id": 1}), 'has neither "conversations" (ShareGPT) nor "messages" (OpenAI)'),
    (json.dumps({**openai(("user", "a")), **sharegpt(("human", "b"))}), 'has both "conversations" (ShareGPT)'),
    ("[1, 2]", 'must be an object with a "conversations" or "messages" list, got a list'),
    ('{"conversations": [', "not valid JSON (Expecting value, column 20)"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_bad_jsonl_line_is_refused_in_one_line_naming_file_line_and_field(tmp_path: Path, line: str, message: str):
    data = tmp_path / "data.jsonl"
    data.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    path = write_scenario(tmp_path, "data.jsonl")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}:6:5: workloads[0].conversations.file: {data}:3: {message}")
    assert "\n" not in str(caught.value)


def test_a_stated_format_is_held_to(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", openai(("user", "a")))
    with pytest.raises(ValueError, match=r'd.jsonl:1: has no "conversations" list \(format: sharegpt\)'):
        read({"file": "d.jsonl", "format": "sharegpt"}, tmp_path)


BAD_ARRAYS = [
    ('[\n{"conversations": [{"from": "human", "value": "a"}]}\n{"x": 1}]', 3,
     "expected ',' or ']' after the item of line 2, got '{'"),
    ('[{"conversations": [{"from": "human", "value": "a"}]},\n]', 2, "',' before the closing ']'"),
    ('[{"conversations": [{"from": "human", "value": "a"}]}] []', 1, "text after the array's closing ']'"),
    ('[\n{"conversations": [{"from": "human", "value": "a"}]},\n{"conversations": [}\n]', 3,
     "not valid JSON (Expecting value)"),
    ('[\n{"conversations": [{"from": "human", "value": "a"}]}', 2,
     "expected ',' or ']' after the item of line 2, got the end of the file"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_ARRAYS)
def test_a_broken_array_is_refused_even_with_skip_bad(tmp_path: Path, text: str, line: int, message: str):
    (tmp_path / "d.json").write_text(text)
    with pytest.raises(ValueError) as caught:
        read({"file": "d.json", "skip_bad": True}, tmp_path)
    assert f"{tmp_path / 'd.json'}:{line}: {message}" in str(caught.value)


def test_a_bad_array_entry_names_its_line_and_field(tmp_path: Path):
    (tmp_path / "d.json").write_text(
        '[\n  {"conversations": [{"from": "human", "value": "a"}]},\n  {"conversations": [{"from": "human", '
        '"value": "a"}, {"from": "gpt", "value": null}]}\n]'
    )
    with pytest.raises(ValueError) as caught:
        read("d.json", tmp_path)
    assert f"{tmp_path / 'd.json'}:3: conversations[1].value: must be a string, got nothing (null)" in str(caught.value)


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path):
    bad = GOOD.encode()[:-5] + b"\xff\"}]}"  # a byte that is no UTF-8 in the last answer
    for name, text, line in (("d.jsonl", GOOD.encode() + b"\n" + bad + b"\n", 2),
                             ("d.json", b"[\n" + GOOD.encode() + b",\n" + bad + b"]", 3)):
        (tmp_path / name).write_bytes(text)
        with pytest.raises(ValueError, match=rf"{name}:{line}: not UTF-8 text"):
            read({"file": name, "skip_bad": True}, tmp_path)


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ValueError, match=rf"conversation file not found: {tmp_path / 'gone.jsonl'}"):
        read("gone.jsonl", tmp_path)


def test_skip_bad_skips_and_counts(tmp_path: Path):
    (tmp_path / "d.jsonl").write_text("\n".join([GOOD, BAD_LINES[0][0], "{oops", GOOD, BAD_LINES[4][0]]) + "\n")
    dataset = read({"file": "d.jsonl", "skip_bad": True}, tmp_path)
    assert dataset.counts == Counts(entries=5, bad=3, filtered=0, kept=2)
    assert str(dataset.counts) == "2 conversations kept of 5 entries (3 bad skipped, 0 filtered out)"


def test_check_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "data.jsonl").write_text(GOOD + "\n" + BAD_LINES[0][0] + "\n")
    assert check(write_scenario(tmp_path, "data.jsonl")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'data.jsonl'}:2: conversations[2].from: must be one of" in err


# -- the workload -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["turns: 3", "prompts: [hi]"])
def test_turns_and_prompts_do_not_go_with_conversations(tmp_path: Path, key: str):
    jsonl(tmp_path / "d.jsonl", sharegpt(("human", "a")))
    path = write_scenario(tmp_path, "d.jsonl")
    path.write_text(path.read_text() + f"    {key}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    name = key.split(":")[0]
    assert str(caught.value) == (f"{path}:7:5: workloads[0].{name}: set {name} or conversations, not both: a "
                                 "conversation brings its own user turns")


def test_the_payload_carries_the_conversations_so_workers_need_no_file(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", sharegpt(("human", "a"), ("gpt", "b")), sharegpt(("human", "c")))
    scenario = load_scenario(write_scenario(tmp_path, "{file: d.jsonl, history: recorded, sample: 1, seed: 3}"))
    (tmp_path / "d.jsonl").unlink()
    shipped = Scenario.from_payload(json.loads(json.dumps(scenario.to_payload())))
    assert shipped == scenario
    dataset = shipped.workloads[0].conversations  # type: ignore[union-attr]
    assert dataset is not None and dataset.history == "recorded" and len(dataset.items) == 1
    assert dataset.counts == Counts(entries=2, bad=0, filtered=0, kept=1)


def test_bad_settings_are_refused_by_name(tmp_path: Path):
    jsonl(tmp_path / "d.jsonl", sharegpt(("human", "a")))
    at = "workloads[0].conversations"
    for written, message in (
        ("{file: d.jsonl, user_turns: {min: 3, max: 2}}", f"{at}.user_turns.max: must be >= min (3), got 2"),
        ("{file: d.jsonl, history: mine}", f"{at}.history: must be one of model, recorded"),
        ("{file: d.jsonl, num_predict: 20}", f"{at}.num_predict: must be one of from_answer_words"),
        ("{file: d.jsonl, sampel: 3}", f"{at}.sampel: unknown key 'sampel'; did you mean 'sample'?"),
        ("[d.jsonl]", f"{at}: must be a file name or a mapping with file: and options"),
    ):
        with pytest.raises(ScenarioError) as caught:
            load_scenario(write_scenario(tmp_path, written))
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)
