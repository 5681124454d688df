"""A trace replayed by a master and two workers as real processes: each worker sends its share of the
sessions at the recorded times, and every request of the trace is sent exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgen.scenario.load import Replay
from loadgen.scenario.scenario import load_scenario
from loadgen.scenario.traces.schedule import share
from tests.distributed.cluster import Cluster, assert_every_request_recorded_once
from tests.helpers import emulator_scenario
from tests.replay_checks import assert_sent_as_scheduled, matched

pytestmark = pytest.mark.integration


def write_trace(path: Path) -> None:
    """A requests.csv of nine sessions over three seconds: six chats of two turns (the second sent half a
    second after the first ended) and three single requests."""
    rows = ["session_id,step,t_start,t_end,prompt_tokens,output_tokens"]
    for i in range(9):
        start = 1000.0 + 0.3 * i
        rows.append(f"s{i},0,{start},{start + 0.2},{40 + i},8")
        if i % 3:
            rows.append(f"s{i},1,{start + 0.7},{start + 0.9},{80 + i},8")
    path.write_text("\n".join(rows) + "\n")


def test_each_worker_sends_its_share_at_the_recorded_times(cluster: Cluster, scenario_file, tmp_path: Path) -> None:
    write_trace(tmp_path / "trace.csv")
    scenario = emulator_scenario([{"name": "chat", "kind": "chat"}], num_parallel=4,
                                 load={"shape": "replay", "file": str(tmp_path / "trace.csv"), "format": "requests_csv",
                                       "max_users": 20, "stop_timeout": "30s"})
    path = scenario_file(scenario)
    replay = load_scenario(path).load
    assert isinstance(replay, Replay) and len(replay.requests) == 15 and len(replay.sessions) == 9
    port = cluster.start_master(path, 2)
    for _ in range(2):
        cluster.start_worker(port)
    run = cluster.wait()
    assert_every_request_recorded_once(run, workers=2)
    begin = run.stages.set_index("stage").loc["replay"].t_begin
    sent = matched(run.records, replay, begin)  # every request of the trace once
    excess = assert_sent_as_scheduled(sent)  # each at its recorded time, a chat's turns in order
    # Worker w is node w of the two (the master lists them by index): it sent the sessions s with s % 2 == w.
    for worker in (0, 1):
        expected = {(replay.sessions[replay.requests[i].session].key, replay.requests[i].step)
                    for i in share(replay.requests, worker, 2)}
        mine = sent[sent.worker == worker]
        assert set(zip(mine.key, mine.step, strict=True)) == expected
        assert (mine.session % 2 == worker).all()
    bound = max(0.5, float((run.records.t_end - run.records.t_start).median()))
    assert excess.max() < bound, (excess.max(), bound)
