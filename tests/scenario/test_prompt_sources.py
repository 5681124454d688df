"""Prompt sources: every written form ends up as a list of prompts, read once at load time."""

import json
import random
from pathlib import Path

import pytest

from loadgen.scenario.prompts import Message, Prompts, Synthetic
from loadgen.scenario.scenario import Scenario, ScenarioError, load_scenario


def prompts(written, base_dir: Path | None = None) -> Prompts:
    return Prompts.model_validate(written, context={"base_dir": base_dir} if base_dir else None)


def test_a_plain_list_is_inline():
    source = prompts(["one", "two"])
    assert source.items == ("one", "two")
    assert source.inline == ("one", "two")
    assert source.order == "cycle"


def test_inline_mapping_with_order():
    assert prompts({"inline": ["a"], "order": "random"}).order == "random"


def test_text_file_one_prompt_per_line(tmp_path: Path):
    (tmp_path / "p.txt").write_text("# a comment\nfirst prompt\n\n   second prompt  \n  # indented comment\nthird\n")
    assert prompts({"file": "p.txt"}, tmp_path).items == ("first prompt", "second prompt", "third")


def test_text_file_split_on_blank_lines(tmp_path: Path):
    (tmp_path / "docs.txt").write_text("# header\n\nline one\nline two\n\n\nsecond doc\n# skipped\nstill second\n")
    items = prompts({"file": "docs.txt", "split": "blank_line"}, tmp_path).items
    assert items == ("line one\nline two", "second doc\nstill second")


def test_jsonl_rows(tmp_path: Path):
    rows = [
        {"prompt": "p"},
        {"text": "t", "id": 7},  # other keys are ignored
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
    ]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    items = prompts({"file": "rows.jsonl"}, tmp_path).items
    assert items == ("p", "t", (Message(role="system", content="s"), Message(role="user", content="u")))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"prompt": ""}', '"prompt" must be a non-empty string'),
        ('{"prompt": "a", "text": "b"}', 'exactly one of "prompt", "text" or "messages"'),
        ('["a"]', 'exactly one of "prompt", "text" or "messages"'),
        ('{"messages": []}', '"messages" must be a non-empty list'),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "role must be one of system, user, assistant, tool"),
        ('{"messages": [{"role": "user"}]}', 'messages[0] must have exactly "role" and "content"'),
        ('{"prompt": "a"', "not valid JSON"),
    ],
)
def test_bad_jsonl_rows_are_reported_with_their_line(tmp_path: Path, row, message):
    (tmp_path / "rows.jsonl").write_text('{"prompt": "fine"}\n\n' + row + "\n")
    with pytest.raises(ValueError) as caught:
        prompts({"file": "rows.jsonl"}, tmp_path)
    assert "rows.jsonl:3: " in str(caught.value)
    assert message in str(caught.value)


def test_synthetic_prompts_are_fixed_by_their_seed():
    first = prompts({"synthetic": {"words": {"min": 5, "max": 9}, "count": 20, "seed": 7}})
    again = prompts({"synthetic": {"words": {"min": 5, "max": 9}, "count": 20, "seed": 7}})
    other = prompts({"synthetic": {"words": {"min": 5, "max": 9}, "count": 20, "seed": 8}})
    assert len(first.items) == 20
    assert first.items == again.items != other.items
    assert all(5 <= len(item.split()) <= 9 for item in first.items)
    assert all(item[0].isupper() and item.endswith(".") for item in first.items)


def test_synthetic_defaults():
    synthetic = Synthetic()
    assert (synthetic.count, synthetic.seed) == (100, 0)
    assert all(20 <= len(item.split()) <= 60 for item in synthetic.generate())


def test_cycle_walks_the_list_and_random_follows_the_seed():
    cycle = prompts(["a", "b", "c"])
    assert [cycle.pick(i, random.Random(0)) for i in range(5)] == ["a", "b", "c", "a", "b"]
    shuffled = prompts({"inline": ["a", "b", "c"], "order": "random"})
    assert [shuffled.pick(0, random.Random(9)) for _ in range(3)] == [shuffled.pick(0, random.Random(9))] * 3


def test_relative_prompt_files_are_read_from_the_scenarios_directory(tmp_path: Path, monkeypatch):
    scenario_dir = tmp_path / "suite"
    (scenario_dir / "prompts").mkdir(parents=True)
    (scenario_dir / "prompts" / "chat.txt").write_text("hello there\n")
    (scenario_dir / "s.yaml").write_text(
        "name: s\nmodel: m\nworkloads:\n  - {name: chat, kind: chat, prompts: {file: prompts/chat.txt}}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the scenario's directory
    assert load_scenario("suite/s.yaml").workloads[0].prompts.items == ("hello there",)


def test_the_payload_carries_the_prompts_so_workers_need_no_files(tmp_path: Path):
    (tmp_path / "p.txt").write_text("only prompt\n")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: m\nworkloads:\n  - {name: chat, kind: chat, prompts: {file: p.txt}}\n")
    payload = load_scenario(path).to_payload()
    (tmp_path / "p.txt").unlink()
    assert Scenario.from_payload(payload).workloads[0].prompts.items == ("only prompt",)


def test_a_prompt_file_named_by_a_workload_must_exist(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: m\nworkloads:\n  - name: chat\n    kind: chat\n    prompts: {file: gone.txt}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == (
        f"{path}:6:15: workloads[0].prompts.file: prompt file not found: {tmp_path / 'gone.txt'}"
    )


def test_chat_message_prompts_need_the_chat_endpoint(tmp_path: Path):
    (tmp_path / "rows.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: m\nworkloads:\n  - {name: b, kind: batch, prompts: {file: rows.jsonl}}\n")
    with pytest.raises(ScenarioError, match=r"workloads\[0\]\.prompts: prompts with chat messages need endpoint: chat"):
        load_scenario(path)


def test_synthetic_prompts_are_bounded_in_total():
    # 100000 prompts of 100 words each: 10,000,000 words, over the 2,000,000-word cap
    with pytest.raises(ValueError, match="would generate 10000000 words in all, more than 2000000"):
        prompts({"synthetic": {"words": 100, "count": 100_000}})


def test_huge_prompt_files_are_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("loadgen.scenario.prompts.MAX_PROMPT_FILE_BYTES", 10)
    (tmp_path / "big.txt").write_text("a prompt that is longer than ten bytes\n")
    with pytest.raises(ValueError, match="big.txt is larger than .* MiB; every worker gets a copy"):
        prompts({"file": "big.txt"}, tmp_path)
