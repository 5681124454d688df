"""A master and two workers as real processes: every request a worker made reaches requests.csv once."""

from __future__ import annotations

import pytest

from tests.distributed.cluster import Cluster, assert_every_request_recorded_once
from tests.helpers import LocustRun, emulator_scenario, processes_args, wait_for_records

pytestmark = pytest.mark.integration

#: Requests of about a second (100 tokens at ~4x the M1 speed, two slots for four users), so that every
#: worker has requests in flight when the load stops.
SLOW_CHAT = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 3, "think_time": 0}], speed=4,
                              options={"num_predict": 100, "temperature": 0},
                              load={"users": 4, "duration": "4s", "stop_timeout": "30s"})


def assert_requests_in_flight_at_the_end_were_recorded(run: LocustRun, workers: int) -> None:
    """Each worker had requests running when the load stopped; they finished and were recorded."""
    drain = run.stages.set_index("stage").loc["drain"]
    records = run.records
    straddling = records[(records.t_start < drain.t_begin) & (records.t_end > drain.t_begin)]
    assert set(straddling.worker) == set(range(workers)), straddling
    assert (straddling.error == "").all()


def test_workers_without_the_scenario_files_lose_nothing(cluster: Cluster, scenario_file) -> None:
    port = cluster.start_master(scenario_file(SLOW_CHAT), 2, "--model", "gemma3:270m")
    for _ in range(2):
        cluster.start_worker(port)
    run = cluster.wait()
    assert_every_request_recorded_once(run, workers=2)
    assert_requests_in_flight_at_the_end_were_recorded(run, workers=2)
    assert set(run.records.model) == {"gemma3:270m"}  # the master's --model reached the workers


def test_processes_lose_nothing(run_locust) -> None:
    run = run_locust(SLOW_CHAT, *processes_args(2))
    assert_every_request_recorded_once(run, workers=2)
    assert_requests_in_flight_at_the_end_were_recorded(run, workers=2)


def test_a_worker_that_joins_mid_run_leaves_and_its_users_come_back(cluster: Cluster, scenario_file) -> None:
    # Locust hands a newcomer its share of the users at once, before it could have the run's scenario.
    scenario = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 3, "think_time": 0}],
                                 load={"users": 4, "duration": "12s", "stop_timeout": "30s"})
    port = cluster.start_master(scenario_file(scenario), workers=1)
    cluster.start_worker(port)
    wait_for_records(cluster.results, at_least=1)
    cluster.start_worker(port)
    assert cluster.workers[1].wait(30) == 2
    run = cluster.wait()
    assert_every_request_recorded_once(run, workers=1)
    assert "joined while run" in run.output and "joined while the run was going on" in run.output
    # The newcomer was handed half the users (the first worker stopped two), and once it was missed the first
    # worker started two afresh: after the last of them began, four users ran again.
    records = run.records
    firsts = records.groupby("user_id").t_start.min()
    assert len(firsts) == 6, firsts
    back = firsts.max()
    assert back < run.stages.set_index("stage").loc["steady"].t_end, "the users came back only as the load ended"
    assert records[records.t_start >= back].user_id.nunique() == 4
