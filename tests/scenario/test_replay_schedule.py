"""Replay schedules computed by hand: which request goes at which second after the window, the cap and the
speed; which session holds which turns and which of them wait for the last; which node sends which; and
the prompt text of a recorded size, with Mooncake's shared prefix blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgen.scenario.load import Replay
from loadgen.scenario.scenario import Scenario, load_scenario
from loadgen.scenario.traces.rows import TraceRow
from loadgen.scenario.traces.schedule import TraceRequest, TraceSession, build_schedule, share
from loadgen.scenario.traces.text import WORDS_PER_BLOCK, prompt_text, words_for
from loadgen.whatif.accelerate import accelerate


def replay_of(tmp_path: Path, name: str, text: str, format: str, load: str = "") -> Replay:
    (tmp_path / name).write_text(text)
    (tmp_path / "s.yaml").write_text(f"name: t\nmodel: m\nworkloads: [{{name: w, kind: chat}}]\n"
                                     f"load: {{shape: replay, file: {name}, format: {format}{load}}}\n")
    replay = load_scenario(tmp_path / "s.yaml").load
    assert isinstance(replay, Replay)
    return replay


def test_window_cap_and_speed(tmp_path: Path):
    # Requests at 0, 1, 4, 6, 10 and 11 s into the trace. The window [1 s, 11 s) holds 1, 4, 6 and 10; the cap
    # keeps the first three (1, 4, 6); from the window's start they are at 0, 3 and 5 s on the trace's clock,
    # and at speed 2 are due 0, 1.5 and 2.5 s after the replay starts.
    seconds = [0, 1, 4, 6, 10, 11]
    rows = "".join(f"2023-11-16 18:00:{s:02d}.0000000,{100 * (i + 1)},{10 * (i + 1)}\n" for i, s in enumerate(seconds))
    replay = replay_of(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows, "azure",
                       ", speed: 2, window: {start: 1s, end: 11s}, max_requests: 3")
    assert [replay.due(i) for i in range(len(replay.requests))] == [0.0, 1.5, 2.5]
    assert [(r.input_tokens, r.output_tokens) for r in replay.requests] == [(200, 20), (300, 30), (400, 40)]
    assert replay.wall_span == 2.5
    summary = replay.summary
    assert summary is not None
    assert (summary.rows, summary.outside_window, summary.over_cap, summary.kept) == (6, 2, 1, 3)
    assert summary.span_s == 5.0  # the last kept, on the trace's clock


def test_sessions_turns_and_who_waits(tmp_path: Path):
    # Written in completion order, as a run writes it. A chat (0-1-1) whose turns each began after the last
    # ended; a batch (0-2-2) whose three documents went out at once; an open-loop arrival (0-3-3) due at 1.0
    # though sent at 1.3, then its second turn; a request that timed out, without token counts.
    text = ("session_id,step,t_scheduled,t_start,t_end,prompt_tokens,output_tokens,workload,model\n"
            "0-1-1,0,,1000.0,1001.0,50,5,chat,m\n"
            "0-2-2,2,,1000.2,1001.5,300,30,batch,m\n"
            "0-2-2,0,,1000.2,1002.0,100,10,batch,m\n"
            "0-3-3,0,1001.0,1001.3,1002.0,70,7,chat,m\n"
            "0-2-2,1,,1000.2,1002.5,200,20,batch,m\n"
            "0-1-1,1,,1002.0,1003.5,60,6,chat,m\n"
            "0-3-3,1,,1004.0,1004.5,80,8,chat,m\n"
            "0-1-1,2,,1005.0,1006.0,70,7,chat,m\n"
            "0-4-4,0,,1001.5,1031.5,,,chat,m\n")
    replay = replay_of(tmp_path, "requests.csv", text, "requests_csv")
    assert replay.sessions == (TraceSession("0-1-1", "chat", "m"), TraceSession("0-2-2", "batch", "m"),
                               TraceSession("0-3-3", "chat", "m"))
    steps = [(round(r.at, 6), r.session, r.step, r.after) for r in replay.requests]
    assert steps == [
        (0.0, 0, 0, False),
        (0.2, 1, 0, False), (0.2, 1, 1, False), (0.2, 1, 2, False),  # at once, as recorded: nobody waits
        (1.0, 2, 0, False),  # its due time, not its late start
        (2.0, 0, 1, True),  # turn 0 had ended (at 1.0) when it was sent
        (4.0, 2, 1, True),
        (5.0, 0, 2, True),
    ]
    assert replay.summary is not None and (replay.summary.unsized, replay.summary.sessions) == (1, 3)
    # Two nodes: node 0 sends sessions 0 and 2, node 1 session 1; every request once.
    assert share(replay.requests, 0, 2) == [0, 4, 5, 6, 7]
    assert share(replay.requests, 1, 2) == [1, 2, 3]
    assert share(replay.requests, 0, 1) == list(range(8))


def test_the_cap_keeps_the_earliest_of_an_unordered_file():
    rows = [TraceRow(line, time, 10, 1) for line, time in ((2, 5.0), (3, 1.0), (4, 3.0), (5, 2.0), (6, 4.0))]
    schedule = build_schedule(lambda: rows, 0.0, None, 2, False)
    # The trace starts at 1.0 (line 3); the two earliest are lines 3 and 5, at 0 and 1 s.
    assert [(r.at, r.session) for r in schedule.requests] == [(0.0, 0), (1.0, 1)]
    assert [s.key for s in schedule.sessions] == ["line3", "line5"]
    assert schedule.summary.over_cap == 3


def test_mooncake_sessions_wait_turn_by_turn(tmp_path: Path):
    text = ('{"timestamp": 0, "input_length": 10, "output_length": 1, "session_id": 7}\n'
            '{"timestamp": 250, "input_length": 10, "output_length": 1}\n'
            '{"timestamp": 500, "input_length": 20, "output_length": 1, "session_id": 7}\n')
    replay = replay_of(tmp_path, "t.jsonl", text, "mooncake")
    assert [(r.at, replay.sessions[r.session].key, r.step, r.after) for r in replay.requests] == [
        (0.0, "7", 0, False), (0.25, "line2", 0, False), (0.5, "7", 1, True)]


def test_shared_hash_ids_give_identical_prefixes():
    # Two blocks each (1024 tokens = 788 words); the first block (1) is shared, the second (2 or 3) is not.
    a, b = prompt_text("x", (1, 2), 1024).split(" "), prompt_text("y", (1, 3), 1024).split(" ")
    assert len(a) == len(b) == words_for(1024) == 788 == 2 * WORDS_PER_BLOCK
    assert a[:WORDS_PER_BLOCK] == b[:WORDS_PER_BLOCK]
    assert a[WORDS_PER_BLOCK:] != b[WORDS_PER_BLOCK:]
    c = prompt_text("z", (4,), 100).split(" ")
    assert len(c) == round(100 / 1.3) == 77 and c != a[:77]
    assert prompt_text("other session", (1, 2), 1024) == " ".join(a)  # the blocks alone decide the text


def test_a_sessions_prompts_grow_from_its_earlier_ones():
    turn0, turn1 = prompt_text("0-1-1", (), 130), prompt_text("0-1-1", (), 1300)
    assert len(turn0.split(" ")) == 100 and len(turn1.split(" ")) == 1000
    assert turn1.startswith(turn0 + " ")
    assert not prompt_text("0-2-2", (), 1300).startswith(turn0)
    assert prompt_text("s", (), 0) != ""  # at least one word


def test_requests_are_named_tuples_in_the_payload(tmp_path: Path):
    replay = replay_of(tmp_path, "t.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n', "mooncake")
    assert replay.requests == (TraceRequest(0.0, 0, 0, 5, 1, False, ()),)


@pytest.mark.parametrize(("name", "kept", "left_out"), [
    ("replay-azure.yaml", 20, (0, 0)),
    ("replay-mooncake.yaml", 8, (7, 1)),  # 3 before 2 s and 4 after 30 s; 9 in the window, capped at 8
    ("replay-requests.yaml", 13, (0, 0)),
])
def test_the_sample_replays_load_and_survive_the_trip_to_a_worker(name: str, kept: int, left_out: tuple[int, int]):
    scenario = load_scenario(Path(__file__).parents[2] / "scenarios" / name)
    replay = scenario.load
    assert isinstance(replay, Replay) and replay.summary is not None
    assert (replay.summary.kept, (replay.summary.outside_window, replay.summary.over_cap)) == (kept, left_out)
    assert Scenario.from_payload(json.loads(json.dumps(scenario.to_payload()))) == scenario


def test_a_what_if_replays_the_trace_on_the_twins_faster_clock():
    scenario = load_scenario(Path(__file__).parents[2] / "scenarios" / "replay-mooncake.yaml")
    fast = accelerate(scenario, 10).load
    assert isinstance(fast, Replay) and isinstance(scenario.load, Replay)
    # The same requests from the same window of the trace, each due a tenth as long after the start.
    assert (fast.speed, fast.window, fast.requests) == (10.0, scenario.load.window, scenario.load.requests)
    assert fast.wall_span == pytest.approx(scenario.load.wall_span / 10)
