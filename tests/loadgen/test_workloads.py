"""The three workloads against the emulator with a real Locust runner, judged by their records."""

from __future__ import annotations

import json
import signal

import pandas as pd
import pytest

from tests.helpers import emulator_scenario, interrupt, read_records, wait_for_records, with_trace
from tests.loadgen.conftest import slot_wait, waited_for_a_slot

pytestmark = pytest.mark.integration

SERVER_TIMERS = ["server_total_s", "server_load_s", "server_prompt_eval_s", "server_eval_s"]

WORKLOADS = {
    "chat": {"name": "chat", "kind": "chat", "turns": 3, "think_time": 0.05},
    "agent_loop": {"name": "agent", "kind": "agent_loop", "steps": 3, "tool_result": {"latency": 0.02}},
    "batch": {"name": "docs", "kind": "batch", "batch_size": 3},
}


@pytest.mark.parametrize("api", ["ollama", "openai"])
@pytest.mark.parametrize("kind", list(WORKLOADS))
def test_every_request_is_recorded_once_with_its_timings(run_locust, kind, api):
    run = run_locust(emulator_scenario([WORKLOADS[kind]], api=api))
    records, (worker,) = run.records, run.info["workers"]

    assert run.info["complete"]
    assert len(records) > 0
    assert worker["requests_sent"] == worker["records_received"] == len(records)
    assert (records.error == "").all(), records.error_detail.unique()
    # Locust's own table counts the same requests.
    stats = run.locust_stats
    assert stats.loc[stats.Type == "E2E", "Request Count"].sum() == len(records)
    # Time to first token comes before the end, the end after the start.
    assert (records.t_start < records.t_first_token).all()
    assert (records.t_first_token < records.t_end).all()
    # A request cut by num_predict produced exactly that many tokens.
    cut = records[records.done_reason == "length"]
    assert len(cut) > 0 and (cut.output_tokens == cut.num_predict).all()
    # The native API reports the server's timers; Ollama's OpenAI API reports none.
    if api == "ollama":
        assert records[SERVER_TIMERS].notna().all().all()
    else:
        assert records[SERVER_TIMERS].isna().all().all()
    assert set(records.endpoint) == {
        ("/api/chat" if kind != "batch" else "/api/generate") if api == "ollama"
        else ("/v1/chat/completions" if kind != "batch" else "/v1/completions")
    }


def test_native_and_openai_records_have_the_same_shape(run_locust):
    native = run_locust(emulator_scenario([WORKLOADS["chat"]], api="ollama")).records
    openai = run_locust(emulator_scenario([WORKLOADS["chat"]], api="openai")).records
    assert list(native.columns) == list(openai.columns)
    filled = {api: set(df.columns[df.notna().all()]) for api, df in (("ollama", native), ("openai", openai))}
    assert filled["ollama"] - filled["openai"] == set(SERVER_TIMERS)


def test_slot_wait_appears_only_when_users_outnumber_slots(run_locust, tmp_path):
    def run(users: int) -> pd.DataFrame:
        """One-turn chats of ``users`` users on two slots, joined to the emulator's trace of them."""
        trace_file = tmp_path / f"trace-{users}.jsonl"
        scenario = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 1, "think_time": 0}], num_parallel=2,
                                     speed=10, load={"users": users, "duration": "3s"})
        scenario["hosts"][0]["settings"]["trace_file"] = str(trace_file)
        return with_trace(run_locust(scenario).records, trace_file).sort_values("t_start")

    under, over = run(2), run(6)
    for records in (under, over):
        # The records' slot wait is what the server did: the time the request queued for a slot (after the
        # runner was found), plus the server's own hand-over (to its next batch step, from its last token to
        # the final chunk); never anything else. (Trace times are rounded to the microsecond.)
        queued = records.slot_acquired - records.runner_acquired
        handover = (records.prefill_start - records.slot_acquired) + (records.last_chunk - records.last_token)
        assert (slot_wait(records) >= queued - 1e-5).all()
        assert (slot_wait(records) <= queued + handover + 1e-5).all()
    # Two users, two slots: no request waited while another released a slot.
    assert not waited_for_a_slot(under).any()
    # Six users on two slots: all but the first two wait, each for about two others (closed loop: (6 - 2) / 2
    # services).
    assert waited_for_a_slot(over).mean() > 0.5
    service = (over.server_prompt_eval_s + over.server_eval_s).median()
    assert slot_wait(over).median() > 0.8 * service
    # The wait shows in total_duration only: once the model is loaded (after each user's first request,
    # which waited for the load), a request that waited for a slot spent longer in that wait than in load.
    later = over.iloc[6:]
    later = later[waited_for_a_slot(over).iloc[6:]]
    assert len(later) > 0 and (later.server_load_s < slot_wait(later)).all()


@pytest.mark.parametrize("kind", ["chat", "agent_loop"])
def test_context_grows_turn_by_turn(run_locust, kind):
    workload = {**WORKLOADS[kind], "turns" if kind == "chat" else "steps": 4}
    records = run_locust(emulator_scenario([workload])).records
    sessions = [s.sort_values("step") for _, s in records.groupby("session_id") if len(s) >= 3]
    assert sessions, "no session reached three requests"
    for session in sessions:
        assert session.step.tolist() == list(range(len(session)))
        assert session.prompt_tokens.is_monotonic_increasing and session.prompt_tokens.is_unique
    if kind == "agent_loop":
        assert records.tool_calls.sum() > 0  # the emulator answers tools with tool calls


def test_batch_fires_together_and_waits_for_all(run_locust):
    # Slowed down (requests of ~0.3 s) so that a busy machine sends all three before the first answer is in.
    run = run_locust(emulator_scenario([WORKLOADS["batch"]], speed=5, load={"users": 1, "duration": "3s"}))
    batches = run.records.groupby("session_id").agg(first=("t_start", "min"), last_start=("t_start", "max"),
                                                    first_end=("t_end", "min"), end=("t_end", "max"),
                                                    size=("step", "count"))
    batches = batches.sort_values("first")
    assert (batches["size"] == 3).all()
    assert (batches.last_start < batches.first_end).all()  # fired at once: all sent before any was answered
    assert (batches["first"].iloc[1:].to_numpy() >= batches.end.iloc[:-1].to_numpy()).all()  # next after all
    stats = run.locust_stats
    assert stats.loc[stats.Type == "BATCH", "Request Count"].sum() == len(batches)


def test_requests_in_flight_at_the_end_finish_and_are_recorded(run_locust):
    # Each request takes ~2 s (100 tokens at 49 tok/s); the load stops after 1 s with both in flight.
    slow = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 1, "think_time": 0}], speed=2,
                             options={"num_predict": 100}, load={"users": 2, "duration": "1s"})
    run = run_locust(slow)
    steady = run.stages.set_index("stage").loc["steady"]
    assert len(run.records) >= 2 and (run.records.error == "").all()
    assert (run.records.t_end > steady.t_end).sum() >= 2  # they ended after the load stopped
    assert run.info["workers"][0]["requests_sent"] == len(run.records)


def _long_requests_with_a_quick_user(speed: float) -> dict:
    """Three users with long requests (up to 600 tokens at ~10 tok/s / speed) and one with quick ones."""
    scenario = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 5, "think_time": 0}], speed=speed,
                                 num_parallel=4, options={"num_predict": 1000}, load={"users": 4, "duration": "10m"})
    scenario["workloads"].append({"name": "quick", "kind": "chat", "turns": 50, "think_time": 0,
                                  "options": {"num_predict": 4}, "users": 1})
    return scenario


def _records_and_info(results) -> tuple[pd.DataFrame, dict]:
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    records = read_records(run_dir / "requests.csv")
    return records, json.loads((run_dir / "run.json").read_text())


def test_sigterm_stops_at_once_and_records_requests_in_flight_as_cancelled(start_locust):
    proc, results = start_locust(_long_requests_with_a_quick_user(speed=1))
    wait_for_records(results, at_least=2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    records, info = _records_and_info(results)
    assert info["workers"][0]["requests_sent"] == len(records), output
    assert info["complete"]
    cancelled = records[records.error == "cancelled"]
    assert (cancelled.workload == "chat").sum() == 3, output  # the three slow conversations were mid-request


def test_ctrl_c_lets_requests_in_flight_finish(start_locust):
    proc, results = start_locust(_long_requests_with_a_quick_user(speed=10), "--stop-timeout", "60")
    wait_for_records(results, at_least=2)
    output = interrupt(proc)
    records, info = _records_and_info(results)
    assert info["workers"][0]["requests_sent"] == len(records), output
    assert (records.error == "").all()  # nothing cut: Ctrl-C waits up to the stop timeout
    assert (records.workload == "chat").sum() >= 3
