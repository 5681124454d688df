"""A conversation dataset drives chat sessions against the emulator: each session replays one conversation,
its user turns as steps 0..n-1, the context growing; with recorded history, the prompts are the same on
every run. Judged by the records (``requests.csv``), with prompt sizes computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers import emulator_scenario

pytestmark = pytest.mark.integration

# The emulator counts a text as max(ceil(words * 1.3), ceil(chars / 4)) tokens, a chat prompt as 3 plus
# 4 per message plus its texts (emulator/text.py, the m1 preset).
KITCHEN = {"id": "a", "conversations": [
    {"from": "system", "value": "be brief"},                                   # 2 w, 8 ch: max(3, 2) = 3
    {"from": "human", "value": "what is a slot"},                              # 4 w, 14 ch: max(6, 4) = 6
    {"from": "gpt", "value": "a slot serves one request at a time"},          # 8 w, 35 ch: max(11, 9) = 11
    {"from": "human", "value": "and a queue"},                                 # 3 w, 11 ch: max(4, 3) = 4
    {"from": "gpt", "value": "requests wait in the queue for a free slot"},   # 9 w, 42 ch: max(12, 11) = 12
    {"from": "human", "value": "thanks"},                                      # 1 w, 6 ch: max(2, 2) = 2
    {"from": "gpt", "value": "you are welcome"},                               # 3 w: num_predict 4
]}
COLOURS = {"id": "b", "conversations": [
    {"from": "gpt", "value": "hello"},                                         # answers nothing: dropped
    {"from": "human", "value": "name three colors"},                           # 3 w, 17 ch: max(4, 5) = 5
    {"from": "gpt", "value": "red green blue"},                                # 3 w, 14 ch: max(4, 4) = 4
    {"from": "human", "value": "and two more"},                                # 3 w, 12 ch: max(4, 3) = 4
]}
# Recorded history: step 0 = 3 + (4 + 3) + (4 + 6) = 20; step 1 adds the answer and the next turn:
# 20 + (4 + 11) + (4 + 4) = 43; step 2: 43 + (4 + 12) + (4 + 2) = 65.
KITCHEN_PROMPTS = [20, 43, 65]
# No system: 3 + (4 + 5) = 12; then 12 + (4 + 4) + (4 + 4) = 28.
COLOURS_PROMPTS = [12, 28]
# num_predict from the recorded answers' words, x 1.3: 8 -> 11, 9 -> 12, 3 -> 4; the last turn of the
# colours has no answer: the scenario's num_predict (24).
KITCHEN_PREDICT = [11, 12, 4]
COLOURS_PREDICT = [4, 24]


def dataset_run(run_locust, tmp_path: Path, history: str, sessions: int) -> list[pd.DataFrame]:
    """One user replaying the two conversations in turn (``sessions`` of them, in rounds: no session is cut
    short by the end of the run); its sessions' records in the order they ran."""
    data = tmp_path / "talks.json"
    data.write_text(json.dumps([KITCHEN, COLOURS], indent=2))
    workload = {"name": "talk", "kind": "chat", "think_time": 0,
                "conversations": {"file": str(data), "history": history, "num_predict": "from_answer_words"}}
    run = run_locust(emulator_scenario([workload], load={"shape": "rounds", "levels": [1], "rounds": sessions}))
    records = run.records
    assert (records.error == "").all(), records.error_detail.unique()
    assert run.info["workloads"][0]["conversations"] == {"file": str(data), "entries": 2, "bad": 0, "filtered": 0,
                                                         "kept": 2}
    by_session = [s.sort_values("step") for _, s in records.groupby("session_id")]
    return sorted(by_session, key=lambda session: session.t_start.min())


def test_each_session_replays_one_conversation_with_growing_context(run_locust, tmp_path: Path):
    sessions = dataset_run(run_locust, tmp_path, "model", sessions=4)
    assert [len(s) for s in sessions] == [3, 2, 3, 2]  # kitchen, colours, kitchen, colours: in file order
    for session in sessions:
        assert session.step.tolist() == list(range(len(session)))
        prompts = session.prompt_tokens.tolist()
        assert prompts[0] == (KITCHEN_PROMPTS if len(session) == 3 else COLOURS_PROMPTS)[0]
        assert session.num_predict.tolist() == (KITCHEN_PREDICT if len(session) == 3 else COLOURS_PREDICT)
        # Each step adds the model's answer (at least its 4 template tokens and one token) and the next turn.
        turns = [6, 4, 2] if len(session) == 3 else [5, 4]
        for step in range(1, len(session)):
            assert prompts[step] >= prompts[step - 1] + 4 + 1 + 4 + turns[step], prompts


def test_recorded_history_sends_the_same_prompts_on_every_run(run_locust, tmp_path: Path):
    first = dataset_run(run_locust, tmp_path, "recorded", sessions=2)
    second = dataset_run(run_locust, tmp_path, "recorded", sessions=2)
    expected: list[Any] = [KITCHEN_PROMPTS, COLOURS_PROMPTS]
    assert [s.prompt_tokens.tolist() for s in first] == [s.prompt_tokens.tolist() for s in second] == expected
    assert [s.num_predict.tolist() for s in first] == [KITCHEN_PREDICT, COLOURS_PREDICT]
    # The model's answers were cut at the estimate: the output asked for is the output made.
    for session in first:
        cut = session[session.done_reason == "length"]
        assert (cut.output_tokens == cut.num_predict).all()
