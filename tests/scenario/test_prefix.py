"""``prefix:``: the same leading text on every request of a session, validated at load time, placed by the users."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from loadgen.scenario.prefix import Prefix
from loadgen.scenario.scenario import ScenarioError, load_scenario
from loadgen.users.base import led_by
from loadgen.wire.protocol import Message


def scenario(tmp_path: Path, prefix: str, kind: str = "chat") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\nmodel: m\nworkloads:\n  - name: a\n    kind: {kind}\n    prefix: {prefix}\n")
    return path


def test_a_prefix_is_fixed_by_its_settings_and_each_session_keeps_one(tmp_path: Path):
    (workload,) = load_scenario(scenario(tmp_path, "{words: 50, count: 3, seed: 7}", "batch")).workloads
    prefix = workload.prefix
    assert prefix is not None and len(prefix.texts) == 3
    assert [len(text.split()) for text in prefix.texts] == [50, 50, 50]
    assert prefix.texts == Prefix(words=50, count=3, seed=7).texts != Prefix(words=50, count=3, seed=8).texts
    # the session's prefix: crc32 of its id, modulo the count
    assert prefix.for_session("0-1-1") == prefix.texts[zlib.crc32(b"0-1-1") % 3]
    assert workload.model_dump(mode="json")["prefix"] == {"words": 50, "count": 3, "seed": 7}  # no texts shipped


def test_defaults_one_prefix_seed_zero(tmp_path: Path):
    (workload,) = load_scenario(scenario(tmp_path, "{words: 800}")).workloads
    assert (workload.prefix.count, workload.prefix.seed) == (1, 0)


@pytest.mark.parametrize(("written", "message"), [
    ("{words: 0}", "6:14: workloads[0].prefix.words: must be >= 1, got 0"),
    ("{words: 1.5}", "6:14: workloads[0].prefix.words: must be a whole number, got 1.5"),
    ("{count: 2}", "6:5: workloads[0].prefix.words: is required"),
    ("{words: 800, cont: 2}", "6:26: workloads[0].prefix.cont: unknown key 'cont'; did you mean 'count'?"),
    ("800", "6:5: workloads[0].prefix: must be a mapping (key: value), got 800"),
    ("{words: 100000, count: 100}", "6:29: workloads[0].prefix.count: would generate 10000000 words in all, more "
                                    "than 2000000 (every worker makes a copy); lower count or words"),
])  # fmt: skip
def test_a_bad_prefix_is_one_line_naming_file_line_and_field(tmp_path: Path, written: str, message: str):
    path = scenario(tmp_path, written)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}:{message}"


def test_on_chat_the_prefix_leads_the_system_message_or_is_one():
    user = Message("user", "hi")
    assert led_by("DOC", [user]) == [Message("system", "DOC"), user]
    assert led_by("DOC", [Message("system", "Be brief."), user]) == [Message("system", "DOC\n\nBe brief."), user]
    assert led_by("", [user]) == [user]
