"""A node's side of a replay, without Locust: which requests it hands out and when they were due, what each
request is sent as, and a session's turn that waits for the one before."""

from __future__ import annotations

import time
from pathlib import Path

import gevent
import pytest

from loadgen.run.shape import ScenarioShape, plan
from loadgen.scenario.load import Replay
from loadgen.scenario.scenario import Scenario, load_scenario
from loadgen.scenario.traces.schedule import share
from loadgen.users.replay import ReplayStream

TRACE = ("session_id,step,t_start,t_end,prompt_tokens,output_tokens,workload,model\n"
         "0-1-1,0,100.00,100.01,130,0,chat,small\n"
         "0-2-2,0,100.02,100.03,13,4,agent,small\n"
         "0-1-1,1,100.04,100.05,260,6,chat,large\n"
         "0-3-3,0,100.06,100.07,26,2,chat,other\n")


def scenario(tmp_path: Path) -> Scenario:
    (tmp_path / "requests.csv").write_text(TRACE)
    (tmp_path / "s.yaml").write_text(
        "name: t\nworkloads:\n  - {name: batch, kind: batch, models: [small]}\n"
        "  - {name: chat, kind: chat, models: [small, large]}\n"
        "load: {shape: replay, file: requests.csv, format: requests_csv}\n")
    return load_scenario(tmp_path / "s.yaml")


def test_each_request_as_sent(tmp_path: Path):
    s = scenario(tmp_path)
    assert isinstance(s.load, Replay)
    stream = ReplayStream(s.load, s.workloads, worker=1)
    first, second, third, fourth = (stream.turn(i) for i in range(4))
    # The chat session runs as workload chat with the model it recorded for it (its first request's).
    assert (first.session_id, first.step, first.workload.name, first.model) == ("1-0-1-1", 0, "chat", "small")
    assert (third.session_id, third.step, third.model) == ("1-0-1-1", 1, "small")
    # No workload "agent" in the scenario: its first; a model the workload lacks: one of the workload's.
    assert (second.workload.name, second.model) == ("batch", "small")
    assert fourth.workload.name == "chat" and fourth.model in ("small", "large")
    # Sizes: 130 tokens = 100 words, num_predict as recorded, at least 1.
    assert len(first.prompt.split(" ")) == 100 and len(third.prompt.split(" ")) == 200
    assert (first.num_predict, third.num_predict) == (1, 6)


def test_a_node_hands_out_its_share_at_the_due_times(tmp_path: Path):
    s = scenario(tmp_path)
    load = s.load
    assert isinstance(load, Replay)
    streams = [ReplayStream(load, s.workloads, worker) for worker in (3, 5)]
    start = time.time()
    for stream in streams:
        stream.start(start, [3, 5])  # worker 3 is node 0 of 2, worker 5 node 1
    handed = [[stream.wait_turn(0) for _ in share(load.requests, node, 2)] for node, stream in enumerate(streams)]
    # Sessions 0 (0-1-1) and 2 (0-3-3) go to worker 3, session 1 (0-2-2) to worker 5; each request when due.
    due = [[(index, round(at - start, 6)) for index, at in node] for node in handed]
    assert due == [[(0, 0.0), (2, 0.04), (3, 0.06)], [(1, 0.02)]]
    idle = ReplayStream(load, s.workloads, worker=9)
    idle.start(start, [3, 5])  # not taking part: sends nothing
    assert gevent.with_timeout(0.2, idle.wait_turn, 0, timeout_value=None) is None


def test_a_turn_waits_for_the_one_before_and_the_last_ends_the_session(tmp_path: Path):
    s = scenario(tmp_path)
    assert isinstance(s.load, Replay)
    stream = ReplayStream(s.load, s.workloads, worker=0)
    stream.start(time.time(), [0])
    assert [stream.wait_turn(0)[0] for _ in range(3)] == [0, 1, 2]  # turn 1 of session 0 is taken while 0 runs
    waiting = gevent.spawn(stream.wait_for_earlier, 2)
    gevent.sleep(0.05)
    assert not waiting.dead  # turn 1 waits for turn 0 (it was sent after turn 0 ended)
    stream.wait_for_earlier(1)  # session 1's only request waits for nothing
    assert stream.done(1) is True  # ... and ends its session
    assert stream.done(0) is False  # the session has turn 1 left
    waiting.join(timeout=1)
    assert waiting.dead
    assert stream.done(2) is True


def test_the_plan_is_one_phase_until_every_request_is_recorded(tmp_path: Path):
    load = scenario(tmp_path).load
    assert isinstance(load, Replay)
    (phase,) = plan(load)
    # Four requests, the last due 0.06 s after the start; a node that vanished cannot hold the run up for
    # longer than stop_timeout (120 s by default) after that.
    assert (phase.label, phase.mode, phase.users, phase.requests) == ("replay", "replay", 100, 4)
    assert phase.duration == pytest.approx(0.06 + 120) and phase.waits_for_users
    assert ScenarioShape([phase]).describe() == "a replay of 4 requests by 100 users"
