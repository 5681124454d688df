"""A previous run's requests.csv replayed against the emulator, end to end: every request sent once, at its
recorded time (twice as fast), its session's turns in order and on one host, its recorded sizes."""

from __future__ import annotations

import pytest

from analysis.analyze import analyze
from analysis.load import load_run
from analysis.summary import summary
from loadgen.scenario.load import Replay
from loadgen.scenario.scenario import load_scenario
from tests.helpers import assert_records_reconcile, embedded_emulator, emulator_scenario
from tests.replay_checks import assert_sent_as_scheduled, matched

pytestmark = pytest.mark.integration

CHAT = {"name": "chat", "kind": "chat", "turns": 3, "think_time": {"min": 0.2, "max": 0.6}}
BATCH = {"name": "batch", "kind": "batch", "batch_size": 3, "pause": 0.5}


def test_a_recorded_run_replays_every_request_in_session_order(run_locust, scenario_file):
    recorded = run_locust(emulator_scenario([CHAT, BATCH], load={"users": 3, "duration": "4s", "stop_timeout": "30s"}))
    original = recorded.records[recorded.records.error == ""]
    assert len(original) == len(recorded.records) >= 9
    # Replayed twice as fast on two emulators: a session stays on the one its first request went to.
    scenario = emulator_scenario(
        [{"name": "chat", "kind": "chat"}, {"name": "batch", "kind": "batch"}],
        hosts=[embedded_emulator("emu1"), embedded_emulator("emu2")],
        load={"shape": "replay", "file": str(recorded.dir / "requests.csv"), "format": "requests_csv", "speed": 2,
              "max_users": 30, "stop_timeout": "30s"})
    path = scenario_file(scenario, "replay.yaml")
    replay = load_scenario(path).load
    assert isinstance(replay, Replay)
    run = run_locust(path)
    assert_records_reconcile(run)
    begin = run.stages.set_index("stage").loc["replay"].t_begin
    sent = matched(run.records, replay, begin)
    excess = assert_sent_as_scheduled(sent)
    # The recorded request each replays: same workload, sizes asked as recorded, due at half its offset.
    origin = original.assign(key=original.session_id).merge(sent, on=["key", "step"], suffixes=("_rec", ""))
    assert len(origin) == len(original) == len(run.records)
    assert (origin.workload == origin.workload_rec).all()
    assert (origin.num_predict == origin.output_tokens_rec).all() and (origin.output_tokens == origin.num_predict).all()
    recorded_at = origin.t_start_rec - original.t_start.min()
    assert ((origin.due - begin) - recorded_at / 2).abs().max() < 1e-5
    # The server counts the synthetic prompt's words at 1.3 tokens each, or its characters over 4 when more
    # (for this text about 2 % more, by up to 8 % for a short one), plus its chat or completion template
    # (7 tokens on the emulator) on top of the recorded count, which already held the recording's template.
    assert (origin.prompt_tokens >= origin.prompt_tokens_rec).all()
    assert (origin.prompt_tokens <= 1.08 * origin.prompt_tokens_rec + 7).all()
    assert set(run.records.host) == {"emu1", "emu2"}
    # Lag: t_start - t_scheduled is what the turns' order explains (a turn waits for the one before, which
    # ran slower than twice as fast) plus the replay's own overhead, which stays under a typical request's
    # time (e2e median, measured here) or half a second, whichever is more.
    bound = max(0.5, float((run.records.t_end - run.records.t_start).median()))
    assert excess.max() < bound, (excess.max(), bound)
    fidelity = summary(analyze(load_run(run.dir)))["replay"]
    assert (fidelity["scheduled"], fidelity["sent"], fidelity["not_sent"]) == (len(original), len(original), 0)
    print(f"replayed {len(sent)} requests: excess lag max {excess.max() * 1000:.1f} ms (bound {bound:.2f} s), "
          f"lag p99 {fidelity['lag_s']['p99'] * 1000:.1f} ms")


def test_requests_that_find_every_user_busy_show_their_wait_as_lag(run_locust, tmp_path):
    # Six requests of an Azure trace (its 2024 form) due at once, two users: the third goes out only when one
    # of the first two has ended, the fourth when the other has, and so on; each one's wait is its lag.
    rows = [f"2024-05-10 00:00:00{'.000001' if i % 2 else ''}+00:00,50,20" for i in range(6)]
    (tmp_path / "azure.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
    load = {"shape": "replay", "file": str(tmp_path / "azure.csv"), "format": "azure", "max_users": 2,
            "stop_timeout": "30s"}
    run = run_locust(emulator_scenario([{"name": "trace", "kind": "chat"}], num_parallel=2, speed=5, load=load))
    records = run.records.sort_values("t_start")
    assert len(records) == 6 and (records.error == "").all()
    starts, ends = records.t_start.to_numpy(), records.t_end.sort_values().to_numpy()
    assert (starts[2:] >= ends[:-2]).all()  # the i-th request waited for the (i-2)-th to end
    lag = records.t_start - records.t_scheduled
    assert (lag.iloc[2:] >= (records.t_end - records.t_start).min() - 1e-3).all()
    fidelity = summary(analyze(load_run(run.dir)))["replay"]
    assert fidelity["sent"] == 6 and fidelity["lag_s"]["max"] == pytest.approx(lag.max(), abs=1e-6)
