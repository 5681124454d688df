"""The capacity search with real Locust runs against the emulator, judged by capacity.json and the records.

The emulator (M1 preset, 2 slots, sped up 10x) serves one-request chat sessions with no think time, so
e2e grows by about half a service time per user: its p95 is ~0.12 s at one user and ~0.6 s at seven.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from benchmarks.capacity import compare
from tests.helpers import assert_records_reconcile, emulator_scenario, processes_args

pytestmark = pytest.mark.integration

CHAT = {"name": "chat", "kind": "chat", "turns": 1, "think_time": 0}
LINE = re.compile(r"^capacity: (>= )?(\d+) users \((.*)\)", re.M)


def capacity_scenario(slo: dict[str, Any] | None = None, **load: Any) -> dict[str, Any]:
    shape = {"shape": "capacity", "max_users": 16, "probe_duration": "1.5s", "settle": "0.3s", "min_requests": 10,
             "stop_timeout": "30s", **load}
    return emulator_scenario([CHAT], speed=10, slo=slo or {"e2e_p95": 0.6}, load=shape)


@pytest.mark.slow  # an exhaustive sweep of 32 user counts; -m slow runs it
def test_the_search_agrees_with_an_exhaustive_sweep_in_a_fraction_of_its_time(tmp_path):
    sweep, search, _ = compare("emulator", max_users=32, slo_s=0.6, level_s=1.5, settle_s=0.3, work=tmp_path)
    assert sweep.capacity >= 2, sweep.detail  # the range holds an answer to find
    assert abs(search.capacity - sweep.capacity) <= 1, f"sweep {sweep.detail}\nsearch {search.detail}"
    assert search.wall_s <= 0.4 * sweep.wall_s, (search.wall_s, sweep.wall_s)


def test_a_capacity_run_prints_its_answer_and_writes_every_probe(run_locust):
    run = run_locust(capacity_scenario())
    summary = json.loads((run.dir / "capacity.json").read_text())
    line = LINE.search(run.output)
    assert line, run.output
    assert int(line[2]) == summary["value"] == summary["last_pass"]
    assert summary["first_fail"] == summary["value"] + 1  # bisected down to one user
    assert summary["unit"] == "users" and summary["limiting"] == "e2e_p95_s" and summary["outcome"] == "found"
    # Each probe is a stage of its own, its settle time excluded as warm-up.
    probes = run.stages[run.stages["mode"] == "capacity"]
    assert list(probes["stage"]) == [p["stage"] for p in summary["probes"]]
    assert (probes.warmup_s == 0.3).all()
    assert [p["users"] for p in summary["probes"]] == list(probes.users)
    # A verdict counts the requests that started in the probe after its warm-up and ended before it ended; a
    # probe run again (too close to call) is judged on its runs' requests together.
    records = run.records
    judged: dict[int, int] = {}
    for probe, stage in zip(summary["probes"], probes.itertuples(), strict=True):
        measured = records[(records.t_start >= stage.t_begin + stage.warmup_s) & (records.t_end <= stage.t_end)]
        judged[probe["users"]] = (judged.get(probe["users"], 0) if probe["repeat"] else 0) + len(measured)
        assert probe["requests"] <= judged[probe["users"]] + 1, (probe, judged)
    assert_records_reconcile(run)


def test_a_probe_that_has_clearly_failed_stops_early(run_locust):
    # 16 users on 2 slots: e2e p95 ~1.4 s against 0.3 s; the probe would hold 20 s.
    run = run_locust(capacity_scenario({"e2e_p95": 0.3}, start=16, probe_duration="20s", max_users=16))
    first = json.loads((run.dir / "capacity.json").read_text())["probes"][0]
    stage = run.stages.set_index("stage").loc[first["stage"]]
    assert first["verdict"] == "fail" and first["early_stop"].startswith("clearly failed: e2e p95")
    assert stage.t_end - stage.t_begin < 10


def test_a_capacity_gate_fails_the_run_when_too_few_users_pass(run_locust):
    run = run_locust({**capacity_scenario(max_users=4), "capacity": {"min": 8}})
    summary = json.loads((run.dir / "capacity.json").read_text())
    assert summary["outcome"] == "bound" and summary["value"] == 4
    assert summary["passed_gate"] is False and run.returncode == 1


def test_the_search_runs_across_worker_processes(run_locust):
    run = run_locust(capacity_scenario(max_users=8), *processes_args(2))
    summary = json.loads((run.dir / "capacity.json").read_text())
    assert summary["outcome"] in ("found", "bound") and summary["value"] >= 2
    assert sorted(w["index"] for w in run.info["workers"]) == [0, 1]
    assert_records_reconcile(run)


def test_a_search_over_arrival_rates(run_locust):
    # One slot serving ~0.12 s requests holds about 8 requests/s before waits pile up.
    scenario = capacity_scenario({"e2e_p95": 0.5}, max_rate=32, start_rate=2, rate_precision=1, max_users=40)
    scenario["hosts"][0]["settings"]["num_parallel"] = 1
    run = run_locust(scenario)
    summary = json.loads((run.dir / "capacity.json").read_text())
    assert summary["unit"] == "req/s" and summary["outcome"] == "found"
    assert summary["first_fail"] - summary["last_pass"] <= 1
    assert 2 <= summary["value"] < 16
    arrivals = run.records[run.records.t_scheduled.notna()]
    assert len(arrivals) > 0  # open loop: sessions carry the time they were due
