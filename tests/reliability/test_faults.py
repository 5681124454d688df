"""Faults during a run: each failed request becomes one record with the right error class, the run goes
on, and the counts reconcile (requests sent = records written = Locust's count).

The emulator injects the faults and writes a trace line per request naming the fault it applied, so each
record is checked against what the server actually did to that very request (joined on X-Request-Id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadgen.wire.routing import MAX_RETRY_AFTER_S, RETRY_AFTER_S
from tests.helpers import (
    EmulatorProcess,
    LocustRun,
    assert_locust_counted,
    assert_records_reconcile,
    emulator_change,
    interrupt,
    live_records,
    poll,
    read_run,
    with_trace,
)

pytestmark = pytest.mark.integration

MODEL = "llama3.2:latest"
MISSING_MODEL = "no-such-model:latest"
CRASH = "runner crashed mid-stream"  # the error line's message
TIMEOUT_S = 1.0  # the workloads' read timeout; slow_first_byte stalls longer than this
#: One fault of each kind. slow_first_byte comes first with ``every`` so it fires a known number of times
#: (each costs a user a whole timeout); the others fire at random (seeded) from the second chunk on.
FAULTS = ",".join([
    f"slow_first_byte:every=40:seconds={3 * TIMEOUT_S:g}",
    "reset:p=0.06:after=2",
    f"error_line:p=0.06:after=2:message={CRASH}",
    "truncate:p=0.06:after=2",
    "garbage:p=0.06:after=2",
    "http_503:p=0.06",
    "http_500:p=0.06",
])


def expected_error(trace: dict[str, Any]) -> str:
    """The error class a request must be recorded with, from what the emulator did to it."""
    fault, status = trace["fault"], trace["status"]
    if fault == "slow_first_byte":
        return "timeout"  # the client gave up before the first byte
    if fault in ("http_503", "http_500"):
        return {"http_503": "busy_503", "http_500": "http_5xx"}[fault]
    if status == 404:
        return "http_4xx"  # unknown model: answered before any stream, so no mid-stream fault applied
    return {"": "", "reset": "stream_broken", "error_line": "stream_broken", "truncate": "stream_broken",
            "garbage": "bad_response"}[fault]


def test_every_fault_becomes_a_classified_record_and_the_run_goes_on(
    emulator_factory: Callable[..., EmulatorProcess], run_locust: Callable[..., LocustRun], tmp_path: Path
) -> None:
    trace_file = tmp_path / "trace.jsonl"
    emu = emulator_factory(preset="fast", num_parallel=4, faults=FAULTS, trace_file=trace_file)
    run = run_locust({
        "name": "faults",
        "hosts": [{"name": "emu", "url": emu.url}],
        "options": {"num_predict": 8, "temperature": 0, "timeout": f"{TIMEOUT_S:g}s"},
        "workloads": [
            {"name": "chat", "kind": "chat", "model": MODEL, "turns": 2, "think_time": 0.02, "users": 5},
            {"name": "missing", "kind": "chat", "model": MISSING_MODEL, "turns": 1, "think_time": 0.1, "users": 1},
        ],
        "load": {"users": 6, "duration": "6s", "stop_timeout": "20s"},
    })
    emu.stop()  # flushes the trace
    assert_records_reconcile(run)
    assert_locust_counted(run)

    records = run.records
    joined = with_trace(records, trace_file)
    joined = joined[joined.error != "cancelled"]
    joined["expected"] = [expected_error(row) for row in joined.to_dict("records")]
    wrong = joined[joined.error != joined.expected]
    assert wrong.empty, wrong[["request_id", "fault", "status_server", "error", "expected", "error_detail"]]

    # Every kind happened, with the status and message the server gave.
    by_fault = {fault: group for fault, group in joined.groupby("fault")}
    assert set(by_fault) == {"", "slow_first_byte", "reset", "error_line", "truncate", "garbage", "http_503",
                             "http_500"}
    assert (by_fault["error_line"].query("status_server == 200").error_detail == CRASH).all()
    assert (by_fault["truncate"].query("status_server == 200").error_detail
            == "stream ended before its final chunk").all()
    assert (by_fault["http_503"].status == 503).all() and (by_fault["http_500"].status == 500).all()
    assert (by_fault["slow_first_byte"].status == 0).all()
    missing = joined[(joined.model == MISSING_MODEL) & (joined.error == "http_4xx")]
    assert len(missing) > 0 and (missing.status == 404).all()
    assert missing.error_detail.str.contains("not found").all()

    # The run went on: each kind of failure is followed by successful requests.
    ok = records[records.error == ""]
    for error, group in records[records.error != ""].groupby("error"):
        assert (ok.t_start > group.t_end.min()).any(), f"nothing succeeded after the first {error}"


def set_faults(emu: EmulatorProcess, spec: str) -> tuple[float, float]:
    """Replace the emulator's faults: ``(sent, answered)``, the old ones in force until at least ``sent``,
    the new ones from ``answered`` at the latest (epoch seconds)."""
    return emulator_change(emu.url, "/_emulator/faults", {"spec": spec})


def backoff_probes(seconds: float) -> int:
    """How many requests the router lets through to a host that keeps refusing for ``seconds``: one at the
    start, then one each time its back-off (doubling from RETRY_AFTER_S up to MAX_RETRY_AFTER_S) ends."""
    probes, t, wait = 1, 0.0, RETRY_AFTER_S
    while (t := t + wait) < seconds:
        probes, wait = probes + 1, min(wait * 2, MAX_RETRY_AFTER_S)
    return probes


def test_a_host_that_dies_is_avoided_while_down_and_a_503_storm_is_recorded(
    emulator_factory: Callable[..., EmulatorProcess], start_locust: Callable[..., tuple]
) -> None:
    users = 4
    a, b = emulator_factory(preset="fast", num_parallel=4), emulator_factory(preset="fast", num_parallel=4)
    proc, results = start_locust({
        "name": "failover",
        "model": MODEL,
        "hosts": [{"name": "a", "url": a.url}, {"name": "b", "url": b.url}],
        "routing": "round_robin",
        "options": {"num_predict": 8, "temperature": 0},
        "workloads": [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0.05}],
        "load": {"users": users, "duration": "5m", "stop_timeout": "20s"},  # ended by Ctrl-C below
    })

    def count(host: str, error: str, since: float) -> int:
        records = live_records(results)
        return int(((records.host == host) & (records.error == error) & (records.t_start > since)).sum())

    poll(lambda: count("b", "", 0) >= 5, "b to serve")
    b.proc.kill()  # SIGKILL: b dies without a word
    b.proc.wait()
    t_down = time.time()
    poll(lambda: count("b", "connect", t_down) >= 1, "a refused connection to b")
    poll(lambda: count("a", "", t_down) >= 120, "a to carry the load alone for a while")
    t_up = time.time()  # before b listens again: every request to b sent until now found it down
    b = emulator_factory(preset="fast", num_parallel=4, host=f"127.0.0.1:{b.port}")  # back on the same port
    poll(lambda: count("b", "", t_up) >= 5, "b to serve again", timeout=2 * MAX_RETRY_AFTER_S)

    _, storm_on = set_faults(a, "http_503")
    poll(lambda: count("a", "busy_503", storm_on) >= 10, "a storm of 503s from a")
    calm_sent, calm_on = set_faults(a, "")
    poll(lambda: count("a", "", calm_on) >= 5, "a to serve after the storm")
    output = interrupt(proc)
    run = read_run(results, proc.returncode, output)

    assert run.returncode in (0, 1), output
    assert_records_reconcile(run)
    assert_locust_counted(run)
    records = run.records
    on_b_while_down = records[(records.host == "b") & records.t_start.between(t_down, t_up)]
    assert (on_b_while_down.error == "connect").all(), on_b_while_down.error_detail.unique()
    assert on_b_while_down.error_detail.str.contains("refused").all()
    # Back-off kept b's share small: at most each user's request in flight when it was marked down, then
    # one probe per back-off period; a took the rest.
    assert len(on_b_while_down) <= users + backoff_probes(t_up - t_down)
    assert ((records.host == "a") & records.t_start.between(t_down, t_up)).sum() >= 120
    # The storm, by what the server did: every request sent after it began and answered before the calm was
    # asked for was refused by a (the calm is made while its call is in flight, so a request answered later
    # may already have met it); b, never faulted, went on serving.
    in_storm = records[(records.t_start > storm_on) & (records.t_end < calm_sent)]
    on_a = in_storm[in_storm.host == "a"]
    assert len(on_a) >= 10 and (on_a.error == "busy_503").all() and (on_a.status == 503).all(), on_a.error.unique()
    assert (in_storm[in_storm.host == "b"].error == "").all()
    after = records[(records.host == "a") & (records.t_start > calm_on)]
    assert len(after) >= 5 and (after.error == "").all()  # the calm ended it
