"""Every load shape with a real Locust runner against the emulator, checked from the records and stages.csv."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.helpers import REPO, assert_records_reconcile, emulator_scenario
from tests.loadgen.conftest import run_variants

pytestmark = pytest.mark.integration

ONE_TURN = {"name": "chat", "kind": "chat", "turns": 1, "think_time": 0}


def in_flight_at(records: pd.DataFrame, t: float) -> int:
    """Requests the clients had open at time ``t``."""
    return int(((records.t_start <= t) & (records.t_end > t)).sum())


def test_stages_hold_each_user_count(run_locust):
    load = {"shape": "stages", "stages": [{"users": 2, "duration": "3s"}, {"users": 5, "duration": "3s"}]}
    run = run_locust(emulator_scenario([ONE_TURN], num_parallel=8, load=load))
    stages = run.stages.set_index("stage")
    assert list(stages.index) == ["s1-u2", "s2-u5", "drain"]
    for name, users in (("s1-u2", 2), ("s2-u5", 5)):
        stage = stages.loc[name]
        inside = run.records[(run.records.t_start >= stage.t_begin) & (run.records.t_start < stage.t_end)]
        # Closed loop: the stage's users, each with one request open at a time, and at times all at once.
        assert inside.user_id.nunique() == users
        assert max(in_flight_at(run.records, t) for t in inside.t_start) == users
    assert_records_reconcile(run)


def test_sweep_levels_with_a_request_count_and_a_settle_period(run_locust):
    load = {"shape": "sweep", "levels": [1, 3], "level_requests": 12, "settle": "0.5s"}
    run = run_locust(emulator_scenario([ONE_TURN], num_parallel=4, load=load))
    stages = run.stages.set_index("stage")
    assert list(stages.index[:2]) == ["c1", "c3"]
    assert (stages.loc[["c1", "c3"], "warmup_s"] == 0.5).all()
    assert (stages.loc[["c1", "c3"], "mode"] == "level").all()
    for name in ("c1", "c3"):
        stage = stages.loc[name]
        ended = run.records[(run.records.t_end >= stage.t_begin) & (run.records.t_end <= stage.t_end)]
        assert len(ended) >= 12  # the level lasted until its 12 requests were recorded
    assert_records_reconcile(run)


def test_rounds_fire_exactly_n_at_once_and_wait_for_all(run_locust):
    load = {"shape": "rounds", "levels": [1, 2, 4], "rounds": 2, "warmup": 1}
    # Slowed down (requests of ~0.3 s) so that a busy machine sends a whole round before its first answer.
    run = run_locust(emulator_scenario([ONE_TURN], num_parallel=2, speed=5, load=load))
    stages = run.stages[run.stages["mode"] == "round"]
    assert stages.stage.tolist() == ["c1/r1", "c1/r2", "c2/r1", "c2/r2", "c4/r1", "c4/r2"]
    warmup = run.stages.set_index("stage").loc["warmup"]
    assert warmup.warmup_s == pytest.approx(warmup.t_end - warmup.t_begin)  # the whole stage is warm-up
    previous_end = 0.0
    for stage in stages.itertuples():
        inside = run.records[(run.records.t_start >= stage.t_begin) & (run.records.t_start < stage.t_end)]
        assert len(inside) == stage.users, stage.stage
        assert inside.t_start.max() < inside.t_end.min()  # all at once: all sent before any was answered
        assert inside.t_start.min() >= previous_end  # after every request of the last round ended
        previous_end = inside.t_end.max()
    assert len(run.records) == 1 + 2 * (1 + 2 + 4)  # warm-up + the rounds
    assert_records_reconcile(run)


@pytest.mark.parametrize("process", ["poisson", "constant"])
def test_open_loop_arrivals_follow_the_rate(run_locust, process):
    rate, seconds = 25.0, 6
    load = {"shape": "arrivals", "process": process, "max_users": 20,
            "stages": [{"rate": rate, "duration": f"{seconds}s"}]}
    quick = {**ONE_TURN, "options": {"num_predict": 4}}
    # The run id seeds the arrival stream: with a fresh seed each run, the mean of ~150 exponential gaps
    # would fall outside +-15 % of 1/rate in about one run in fifteen.
    run = run_locust(emulator_scenario([quick], num_parallel=16, load=load), "--run-id", "arrivals")
    records = run.records.sort_values("t_scheduled")
    due = records.t_scheduled.dropna().to_numpy()
    gaps = np.diff(due)
    stage = run.stages.set_index("stage").loc["a1-25/s"]
    assert stage.rate == rate
    length = stage.t_end - stage.t_begin  # as long as the shape held it (it ends on a tick)
    assert len(due) == pytest.approx(rate * length, rel=0.25)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.15)
    cv = gaps.std() / gaps.mean()  # Poisson arrivals: exponential gaps, coefficient of variation 1
    assert (0.75 < cv < 1.25) if process == "poisson" else cv < 0.1
    lag = records.t_start - records.t_scheduled
    assert (lag >= -0.001).all()  # never sent before it was due
    # Enough idle users: every arrival found one (fewer requests open than users when it was due), so none
    # waited for a request to end, and no backlog built up over the stage (see the next test for one).
    assert max(in_flight_at(records, t) for t in due) < load["max_users"]
    assert lag.quantile(0.9) < 0.1 * length
    # The arrivals span the whole stage (they once began only at the shape's next tick, a second late).
    assert due[0] - stage.t_begin < 0.1 * length and stage.t_end - due[-1] < 0.1 * length
    assert_records_reconcile(run)


def test_arrivals_beyond_the_user_pool_show_as_scheduling_lag(run_locust):
    load = {"shape": "arrivals", "max_users": 2, "stages": [{"rate": 20, "duration": "3s"}]}
    run = run_locust(emulator_scenario([ONE_TURN], num_parallel=2, speed=5, load=load))
    records = run.records.sort_values("t_scheduled")
    lag = records.t_start - records.t_scheduled
    # Two users cannot keep up with 20 arrivals/s of ~0.3 s requests: the pool is full, so an arrival waits
    # until a user's request ends, and later arrivals wait longer: over the stage the lag grew by most of
    # the time the requests took to go out (arrivals came in faster than they could be sent).
    assert max(in_flight_at(records, t) for t in records.t_start) == 2
    found_both_busy = [in_flight_at(records, t) == 2 for t in records.t_scheduled.iloc[2:]]
    assert np.mean(found_both_busy) > 0.5
    assert lag.iloc[-1] - lag.iloc[0] > 0.5 * (records.t_start.iloc[-1] - records.t_start.iloc[0])


def test_queue_probe_finds_503s_only_while_the_model_loads(run_locust):
    # Ollama bounds only the scheduler queue, which requests for a model that is still loading pass
    # through: a burst at a cold model overflows it; the same burst at a loaded model just queues.
    host = {"name": "emu", "embedded": "emulator",
            "settings": {"num_parallel": 1, "max_queue": 3, "preset": "m1", "speed": 20, "tune": {"load_s": 40}}}
    burst = {"shape": "probe", "burst": {"slots": 1, "max_queue": 3, "margin": 4}}
    cold = run_locust(emulator_scenario([ONE_TURN], hosts=[host], load=burst))
    warm = run_locust(emulator_scenario([ONE_TURN], hosts=[host], load={**burst, "warmup": 1}))
    assert len(cold.records) == 8 and len(warm.records) == 9
    # Three wait in the scheduler queue and one loads, unless the burst filled the queue before the
    # scheduler took the first request out of it (a race real Ollama has too): 8 - 3 - 1 or 8 - 3 refused.
    assert (cold.records.error == "busy_503").sum() in (8 - 3 - 1, 8 - 3)
    assert (warm.records.error == "").all()
    assert cold.stages.set_index("stage").loc["burst8", "mode"] == "probe"
    assert_records_reconcile(cold)
    assert_records_reconcile(warm)


def test_headless_run_writes_its_report(tmp_path, scenario_file):
    path = scenario_file(emulator_scenario([ONE_TURN], load={"users": 1, "duration": "2s"},
                                           slo={"e2e_p95": "1ms"}))
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles"), "--scenario", str(path),
                           "--headless", "--results-dir", str(tmp_path / "r")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    (run_dir,) = (tmp_path / "r").iterdir()
    assert {"report.html", "report.md", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    assert proc.returncode == 1, proc.stderr  # the 1 ms e2e SLO failed, and the exit code says so


def test_seed_sweep_demo_reproduces_the_m1_table(tmp_path):
    def faster(scenario: dict) -> None:
        scenario["hosts"][0]["settings"]["speed"] = 10  # same ratios, ten times faster

    seed = run_variants(tmp_path, "seed-sweep.yaml", faster)
    one, four = seed.curves["1-slot"], seed.curves["4-slots"]
    assert (seed.targets["1-slot"]["slots"], seed.targets["4-slots"]["slots"]) == (1, 4)
    assert seed.targets["1-slot"]["serial"] and not seed.targets["4-slots"]["serial"]
    assert one.wall_s[8] / one.wall_s[1] == pytest.approx(8, rel=0.10)  # queued: wall time grows with N
    assert one.per_req_tok_s[8] / one.per_req_tok_s[1] == pytest.approx(1, rel=0.10)  # at solo speed
    assert four.agg_tok_s[4] / four.agg_tok_s[1] == pytest.approx(1.8, rel=0.10)  # M1: ~1.8x at 4 slots
    assert four.per_req_tok_s[4] / four.per_req_tok_s[1] == pytest.approx(0.45, rel=0.15)  # each at half speed
