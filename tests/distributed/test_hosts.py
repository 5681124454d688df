"""Two hosts of unequal speed: routing policies, a host that goes away and comes back, and the per-host
numbers in the records, in Locust's tables and in the analysis report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import (
    LocustRun,
    embedded_emulator,
    emulator_change,
    emulator_scenario,
    read_records,
    wait_for_records,
)

pytestmark = pytest.mark.integration

CHAT = {"name": "chat", "kind": "chat", "turns": 3, "think_time": 0}


def two_hosts(routing: str, fast_weight: float = 1) -> dict[str, Any]:
    """Six users on two embedded emulators, ``fast`` four times the speed of ``slow``."""
    hosts = [{**embedded_emulator("fast", speed=20), "weight": fast_weight}, embedded_emulator("slow", speed=5)]
    return emulator_scenario([CHAT], hosts=hosts, routing=routing,
                             load={"users": 6, "duration": "4s", "stop_timeout": "30s"})


def assert_per_host_entries_count_the_records(run: LocustRun) -> None:
    """Locust's E2E entry of each host (``chat <model>@<host>``) counts that host's records."""
    stats = run.locust_stats
    entries = stats[stats.Type == "E2E"].set_index("Name")["Request Count"].to_dict()
    counted = run.records[run.records.error != "cancelled"].groupby("host").size()
    assert entries == {f"chat llama3.2:latest@{host}": n for host, n in counted.items()}


def test_sticky_keeps_each_session_on_one_host_and_spreads_sessions(run_locust):
    run = run_locust(two_hosts("sticky"))
    records = run.records
    assert records.groupby("session_id").host.nunique().max() == 1
    sessions = records.groupby("host").session_id.nunique()
    assert set(sessions.index) == {"fast", "slow"}
    assert abs(sessions.fast - sessions.slow) <= 1  # new sessions alternate, whatever their length
    assert_per_host_entries_count_the_records(run)


def test_round_robin_alternates_requests_whatever_the_speed(run_locust):
    run = run_locust(two_hosts("round_robin", fast_weight=3))  # round_robin ignores weights
    requests = run.records.groupby("host").size()
    assert abs(requests.fast - requests.slow) <= 1
    assert (run.records.groupby("session_id").host.nunique() > 1).any()  # sessions are not pinned
    assert_per_host_entries_count_the_records(run)


def test_weighted_follows_the_weights(run_locust):
    run = run_locust(two_hosts("weighted", fast_weight=3))
    n, share = len(run.records), (run.records.host == "fast").mean()
    # Each request draws a host at random, 3:1: the share is 0.75 within 4 binomial standard deviations.
    assert abs(share - 0.75) < 4 * math.sqrt(0.75 * 0.25 / n), (n, share)
    assert_per_host_entries_count_the_records(run)


def test_least_in_flight_favours_the_faster_host_and_the_report_says_so(run_locust):
    run = run_locust(two_hosts("least_in_flight"))
    requests = run.records.groupby("host").size()
    assert requests.fast > 2 * requests.slow, requests.to_dict()  # equal weights; fast is 4x the speed
    assert_per_host_entries_count_the_records(run)

    report = subprocess.run([sys.executable, "-m", "analysis", "report", str(run.dir)], capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stdout + report.stderr
    summary = json.loads((run.dir / "summary.json").read_text())
    targets = {t["host"]: t for t in summary["saturation"]["targets"]}
    assert {host: t["slots"] for host, t in targets.items()} == {"fast": 2, "slow": 2}
    assert targets["fast"]["peak_agg_tok_s"] > 2 * targets["slow"]["peak_agg_tok_s"]
    p95 = {row["host"]: row["p95"] for row in summary["latency"] if row["metric"] == "e2e_s"}
    assert p95["slow"] > p95["fast"]
    (routing,) = [a["text"] for a in summary["advice"] if a["topic"] == "routing"]
    assert "route by weights fast" in routing and "slow" in routing
    markdown = (run.dir / "report.md").read_text()
    assert "llama3.2:latest@fast: 2 effective parallel slots" in markdown
    assert "llama3.2:latest@slow: 2 effective parallel slots" in markdown


def test_a_host_that_refuses_connections_is_avoided_then_used_again(start_locust, emulator_factory):
    a, b = (emulator_factory(preset="m1", speed=20, num_parallel=2) for _ in range(2))
    # The load starts after two seconds without users, once b refuses, so that nothing holds a keep-alive
    # connection to b: a refusal only shows on a new connection (open ones carry on).
    scenario = emulator_scenario([CHAT], routing="round_robin",
                                 hosts=[{"name": "a", "url": a.url}, {"name": "b", "url": b.url}],
                                 load={"shape": "stages", "stop_timeout": "30s",
                                       "stages": [{"users": 0, "duration": "2s"}, {"users": 4, "duration": "8s"}]})
    proc, results = start_locust(scenario)
    wait_for_records(results, at_least=0)  # the run has started (its requests.csv exists)
    asked, refusing = emulator_change(b.url, "/_emulator/refuse", {"seconds": 3})
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), output  # 1: Locust saw failed requests
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    records = read_records(run_dir / "requests.csv").sort_values("t_start")
    assert records.t_start.min() > refusing, "the load began before b refused: the test needs a longer idle stage"

    on_b = records[records.host == "b"]
    refused = on_b[on_b.error == "connect"]
    assert len(refused) > 0 and refused.error_detail.str.contains("refused", case=False).all(), on_b
    # Every request b got while it surely refused (from the answer until three seconds after the ask) was
    # refused; b served none before its last refusal.
    assert (on_b[on_b.t_start.between(refusing, asked + 3)].error == "connect").all()
    served_by_b = on_b[on_b.error == ""]
    assert len(served_by_b) > 0, "b did not serve again after the refusal"
    assert (served_by_b.t_start > refused.t_start.max()).all()
    # Marked down, b is left alone until its back-off ends (one probe each time): a serves the users meanwhile.
    down = (refused.t_start.min(), served_by_b.t_start.min())
    on_a = records[(records.host == "a") & records.t_start.between(*down)]
    assert len(on_a) > 5 * len(refused), (len(on_a), len(refused))
    assert (on_a.error == "").all()
    assert set(records.error) <= {"", "connect"}
