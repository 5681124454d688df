"""What-if on a twin: the scenario accelerated (times divided, rates multiplied), the runs scaled back, and
``ollama-loadtest whatif`` end to end on a twin whose speeds are known, so the prediction can be computed by
hand from the preset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.schema import RECORD_COLUMNS
from loadgen.scenario import load_scenario
from loadgen.scenario.dists import Exponential
from loadgen.scenario.load import Capacity, Stages
from loadgen.scenario.workloads import ChatWorkload
from loadgen.whatif.accelerate import accelerate
from loadgen.whatif.rescale import rescale_run

SCENARIO = """name: wi
model: llama3.2
workloads:
  - name: chat
    kind: chat
    think_time: {dist: exponential, mean: 2s, min: 0s, max: 10s}
    slo: {ttft_p95: 2s}
load: {shape: stages, stages: [{users: 2, duration: 30s, spawn_rate: 1}, {users: 4, duration: 1m}]}
slo: {e2e_p95: 20s, error_rate: 0.01}
"""


def test_acceleration_divides_every_time_and_multiplies_every_rate(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    fast = accelerate(load_scenario(path), 10)
    assert isinstance(fast.load, Stages)
    assert [(s.users, s.duration, s.spawn_rate) for s in fast.load.stages] == [(2, 3.0, 10.0), (4, 6.0, None)]
    assert fast.load.stop_timeout == 12.0
    (chat,) = fast.workloads
    assert isinstance(chat, ChatWorkload)
    assert chat.think_time == Exponential(mean=0.2, min=0.0, max=1.0)
    assert (chat.slo.ttft_p95, chat.slo.e2e_p95, chat.slo.error_rate) == (0.2, 2.0, 0.01)  # a share stays
    assert (fast.slo.e2e_p95, fast.slo.error_rate) == (2.0, 0.01)
    assert chat.turns == load_scenario(path).workloads[0].turns  # counts are not times


def test_a_capacity_search_is_accelerated_too(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("load: {shape: stages, stages: [{users: 2, duration: 30s, spawn_rate: 1}, "
                                     "{users: 4, duration: 1m}]}", "load: {shape: capacity, max_rate: 8}"))
    load = accelerate(load_scenario(path), 4).load
    assert isinstance(load, Capacity)
    assert (load.probe_duration, load.settle, load.max_duration, load.max_rate) == (7.5, 1.25, 450.0, 32.0)


def write_run(directory: Path) -> Path:
    """A run recorded 10x faster: started at t=1000, two requests, one stage, one capacity probe."""
    directory.mkdir()
    rows = []
    for i, (start, first, end) in enumerate([(1000.5, 1000.6, 1001.0), (1001.0, 1001.2, 1002.0)]):
        row = dict.fromkeys(RECORD_COLUMNS, "")
        row.update(run_id="r", worker=0, user_id=i, session_id=f"s{i}", step=0, workload="chat", kind="chat",
                   host="twin", api="ollama", endpoint="/api/chat", model="m", stream=1, t_start=start,
                   t_first_token=first, t_end=end, status=200, output_tokens=10, server_total_s=0.4,
                   server_load_s=0.01, server_prompt_eval_s=0.05, server_eval_s=0.3)
        rows.append(row)
    pd.DataFrame(rows, columns=list(RECORD_COLUMNS)).to_csv(directory / "requests.csv", index=False)
    pd.DataFrame([{"stage": "cap1-u2", "mode": "users", "users": 2, "rate": 4.0, "t_begin": 1000.0,
                   "t_end": 1002.0, "warmup_s": 0.5}]).to_csv(directory / "stages.csv", index=False)
    (directory / "run.json").write_text(json.dumps({
        "run_id": "r", "started_at": 1000.0, "ended_at": 1003.0, "slo": {"e2e_p95_s": 2.0, "error_rate": 0.01},
        "workloads": [{"name": "chat", "slo": {"ttft_p95_s": 0.2}}], "load": {"shape": "capacity",
                                                                              "probe_duration": 3.0, "max_rate": 8.0},
        "swept": {"num_parallel": 2}}))
    check = {"workload": "chat", "slo": "e2e_p95_s", "threshold": 2.0, "observed": 1.5, "low": 1.4, "high": 1.6,
             "n": 40, "verdict": "pass"}
    (directory / "capacity.json").write_text(json.dumps({
        "unit": "req/s", "value": 4.0, "last_pass": 4.0, "first_fail": None, "bound": 8.0, "limiting": None,
        "outcome": "bound", "min": None, "last_pass_text": "e2e p95 1.5 s <= 2 s", "first_fail_text": "",
        "probes": [{"stage": "cap1-r4", "rate": 4.0, "repeat": 0, "requests": 40, "verdict": "pass",
                    "passed": True, "early_stop": "", "checks": [check]}]}))
    return directory


def test_a_run_scaled_back_is_on_the_servers_clock(tmp_path):
    back = rescale_run(write_run(tmp_path / "fast"), tmp_path / "back", 10, "predicted from x")
    records = pd.read_csv(back / "requests.csv")
    assert records.t_start.tolist() == pytest.approx([1005.0, 1010.0])  # 1000 + (t - 1000) x 10
    assert records.t_end.tolist() == pytest.approx([1010.0, 1020.0])
    assert records.server_eval_s.tolist() == pytest.approx([3.0, 3.0]) and (records.output_tokens == 10).all()
    stages = pd.read_csv(back / "stages.csv")
    assert (stages.t_begin[0], stages.t_end[0], stages.warmup_s[0], stages.rate[0]) == pytest.approx(
        (1000.0, 1020.0, 5.0, 0.4))
    info = json.loads((back / "run.json").read_text())
    assert info["ended_at"] == 1030.0 and info["slo"] == {"e2e_p95_s": 20.0, "error_rate": 0.01}
    assert info["workloads"][0]["slo"] == {"ttft_p95_s": 2.0}
    assert (info["load"]["probe_duration"], info["load"]["max_rate"]) == (30.0, 0.8)
    assert info["predicted"] == {"note": "predicted from x", "time_factor": 10}
    capacity = json.loads((back / "capacity.json").read_text())
    assert (capacity["value"], capacity["bound"], capacity["probes"][0]["rate"]) == pytest.approx((0.4, 0.8, 0.4))
    (check,) = capacity["probes"][0]["checks"]
    assert (check["threshold"], check["observed"], check["low"], check["high"]) == pytest.approx((20, 15, 14, 16))
    assert capacity["last_pass_text"] == "e2e p95 15 s <= 20 s"


TWIN = """format: ollama-loadtest.twin/1
base: m1
preset: {solo_tps: 40, parallel_penalty: 0.1, prefill_tps: 100000, jitter: 0, load_s: 0.1}
batch_slowdown: {2: 1.6}
source: {runs: [results/measured-1, results/measured-2]}
"""
PREDICTED = """name: predict
model: llama3.2
options: {num_predict: 24, temperature: 0}
workloads:
  - {name: seed, kind: batch, batch_size: 1, prompts: ["Why is the sky blue?", "What is TCP?"]}
load: {shape: rounds, levels: [1, 2], rounds: 2}
"""


@pytest.mark.integration
def test_whatif_predicts_what_the_twins_preset_says(tmp_path):
    (tmp_path / "twin.yaml").write_text(TWIN)
    (tmp_path / "s.yaml").write_text(PREDICTED)
    proc = subprocess.run([sys.executable, "-m", "locustfiles", "whatif", "--preset-file", "twin.yaml", "s.yaml",
                           "--num-parallel", "1,2", "--speed", "5"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (out,) = (tmp_path / "results").glob("*-predict-whatif")
    summary = json.loads((out / "whatif.json").read_text())
    assert summary["note"] == "predicted from measured-1, measured-2 by its twin twin.yaml, not measured"
    rows = {row["setting"]: row for row in summary["predictions"]}
    # Per-request decode speed, the server's own timer scaled back: 40 tok/s alone with one slot; with two
    # slots 40 / (1 + 0.1) = 36.4 alone and 36.4 / 1.6 = 22.7 when two decode together (the level of 2,
    # half the requests): the median of 2 + 4 requests at 36.4 and 22.7 lies between them.
    assert rows[1]["per_request_tok_s"] == pytest.approx(40, rel=0.01)
    assert 40 / 1.1 / 1.6 * 0.99 <= rows[2]["per_request_tok_s"] <= 40 / 1.1 * 1.01
    # A round's wall: 24 tokens at 40 tok/s = 0.6 s per request, one after the other on one slot, plus at most
    # the model's load (0.1 s, in the first round) and what acceleration cannot scale (its error bound); a
    # quarter more for an emulator slowed down by a busy machine, which the prediction then inherits.
    compare = json.loads((out / "compare" / "compare.json").read_text())
    assert compare["predicted"] == summary["note"]
    one = {row["x"]: row for row in compare["curves"] if row["run"] == "num_parallel-1"}
    slack = 2 * rows[1]["acceleration_error_p95_s"] + 0.1
    for level in (1, 2):
        assert 0.6 * level <= one[level]["wall_s"] <= 1.25 * 0.6 * level + slack, (level, one[level], slack)
    assert compare["recommendation"]["setting"] == {"num_parallel": 2}
    assert "Prediction: num_parallel-1 vs num_parallel-2" in (out / "compare" / "compare.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--num-parallel", "1,x"], "--num-parallel takes whole numbers separated by commas"),
    (["--num-parallel", "2,2"], "--num-parallel takes distinct whole numbers >= 1"),
    (["--num-parallel", "1", "--preset-file", "missing.yaml"], "--preset-file: cannot read missing.yaml"),
])
def test_bad_whatif_input_is_one_line(tmp_path, capsys, monkeypatch, args, message):
    from loadgen.whatif.command import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "twin.yaml").write_text(TWIN)
    (tmp_path / "s.yaml").write_text(PREDICTED)
    assert main(["s.yaml", "--preset-file", "twin.yaml", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_advice_names_the_predicted_capacity_and_the_measured_one(tmp_path):
    from loadgen.whatif.advice import advice

    measured = tmp_path / "measured-4"
    measured.mkdir()
    (measured / "run.json").write_text(json.dumps({"hosts": [{"name": "box", "settings": {"num_parallel": 4}}]}))
    (measured / "capacity.json").write_text(json.dumps({
        "unit": "users", "value": 5, "last_pass": 5, "first_fail": 6, "limiting": "e2e_p95_s", "outcome": "found",
        "probes": []}))
    row = {"setting": {"num_parallel": 2}, "capacity": 6, "capacity_unit": "users"}
    compare = {"setting_curve": [row], "recommendation": {"setting": {"num_parallel": 2}, "line": "use ...",
                                                          "rule": "capacity"}}
    assert advice(compare, [measured], "box") == ("with num_parallel=2 this box holds 6 users within your SLOs "
                                                  "(predicted; measured at num_parallel=4: 5 users)")
    throughput = {"setting_curve": [{**row, "capacity": None}], "recommendation": {
        "setting": {"num_parallel": 2}, "line": "use num_parallel=2: peak 50 tok/s", "rule": "throughput"}}
    assert advice(throughput, [measured], "box") == "predicted: use num_parallel=2: peak 50 tok/s"
    assert advice({"setting_curve": None, "recommendation": None}, [], None) is None


@pytest.mark.parametrize("api, endpoint, server, raw", [
    ("openai", "generate", "llamacpp", True),  # /v1/completions on llama.cpp: the prompt as sent
    ("openai", "generate", "ollama", False),  # Ollama's /v1/completions applies the template, as the twin does
    ("openai", "chat", "llamacpp", False),  # a chat is templated everywhere
    ("ollama", "generate", "llamacpp", False),
    ("openai", "generate", None, False),  # a twin file that does not say
])
def test_the_twin_counts_no_template_where_the_server_evaluated_the_prompt_raw(tmp_path, api, endpoint, server, raw):
    from loadgen.whatif.command import twin_scenario

    (tmp_path / "twin.yaml").write_text(TWIN)
    (tmp_path / "s.yaml").write_text(PREDICTED.replace("model: llama3.2", f"model: llama3.2\napi: {api}")
                                     .replace("kind: batch, batch_size: 1", f"kind: batch, batch_size: 1, "
                                              f"endpoint: {endpoint}"))
    twin = twin_scenario(load_scenario(tmp_path / "s.yaml"), tmp_path / "twin.yaml", [1], None, 1, 5, server)
    (host,) = twin.hosts
    assert twin.api == "ollama"
    assert host.settings.tune == ({"message_overhead": 0.0, "prompt_overhead": 0.0} if raw else None)
