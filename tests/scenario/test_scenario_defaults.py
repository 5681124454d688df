"""Loaded scenarios carry every default resolved, so the runtime reads each value in one place."""

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from loadgen.scenario.hosts import EmulatorHost, ExternalHost, LlamacppHost
from loadgen.scenario.load import Probe, Steady, Sweep
from loadgen.scenario.scenario import PAYLOAD_FORMAT, Scenario, ScenarioError, load_scenario
from loadgen.scenario.workloads import AgentLoopWorkload, BatchWorkload, ChatWorkload


def load(tmp_path: Path, text: str) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(path)


MINIMAL = "name: minimal\nmodel: llama3.2:latest\nworkloads:\n  - {name: chat, kind: chat}\n"


def test_minimal_scenario_defaults(tmp_path: Path):
    scenario = load(tmp_path, MINIMAL)
    assert scenario.api == "ollama" and scenario.routing == "sticky"
    assert scenario.hosts == (EmulatorHost(name="emulator"),)
    assert scenario.load == Steady(users=1)  # one weighted workload: one user
    assert scenario.load.stop_timeout == 120.0

    (chat,) = scenario.workloads
    assert isinstance(chat, ChatWorkload)
    assert chat.models == ("llama3.2:latest",)
    assert (chat.weight, chat.users, chat.endpoint) == (1.0, None, "chat")
    assert (chat.options.stream, chat.options.timeout, chat.options.connect_timeout) == (True, 300.0, 10.0)
    assert chat.options.num_predict is None  # the server's own default
    assert (chat.turns.min, chat.turns.max, chat.think_time.min, chat.think_time.max) == (2, 6, 1, 5)
    assert len(chat.prompts.items) == 100  # built-in synthetic prompts


def test_kind_specific_defaults(tmp_path: Path):
    scenario = load(
        tmp_path, "name: k\nmodel: m\nworkloads:\n  - {name: a, kind: agent_loop}\n  - {name: b, kind: batch}\n"
    )
    agent, batch = scenario.workloads
    assert isinstance(agent, AgentLoopWorkload) and isinstance(batch, BatchWorkload)
    assert [tool.function.name for tool in agent.tools] == ["read_file", "search", "run_tests"]
    assert (agent.steps.min, agent.steps.max, agent.endpoint) == (3, 6, "chat")
    assert (agent.tool_result.words.mean, agent.tool_result.words.min) == (80, 5)
    assert (batch.endpoint, batch.batch_size, batch.pause.value) == ("generate", 4, 0)


def test_options_and_slo_merge_over_the_scenarios(tmp_path: Path):
    scenario = load(
        tmp_path,
        """name: merge
model: m
options: {num_predict: 128, temperature: 0.7, keep_alive: 5m, extra: {top_k: 20, ignore_eos: true}}
slo: {e2e_p95: 10s, error_rate: 1%}
workloads:
  - name: a
    kind: chat
    options: {temperature: 0, stream: false, extra: {top_k: 5}}
    slo: {e2e_p95: 2s, ttft_p95: 500ms}
  - {name: b, kind: chat}
""",
    )
    a, b = scenario.workloads
    assert (a.options.num_predict, a.options.temperature, a.options.stream) == (128, 0.0, False)
    assert a.options.keep_alive.wire == "5m"
    assert a.options.extra == {"top_k": 5, "ignore_eos": True}
    assert (a.slo.e2e_p95, a.slo.ttft_p95, a.slo.error_rate) == (2.0, 0.5, 0.01)
    assert (b.options.temperature, b.options.stream, b.slo.e2e_p95) == (0.7, True, 10.0)
    assert scenario.options.stream is None  # the top level stays as written


def test_models_spread_and_overrides(tmp_path: Path):
    scenario = load(
        tmp_path,
        "name: m\nmodels: [a, b]\nworkloads:\n  - {name: one, kind: chat}\n  - {name: two, kind: chat, model: c}\n",
    )
    assert [w.models for w in scenario.workloads] == [("a", "b"), ("c",)]


def test_hosts_are_named_in_order_and_typed_by_kind(tmp_path: Path):
    scenario = load(
        tmp_path,
        """name: h
api: openai
model: m
hosts:
  - url: http://10.0.0.1:11434/
  - {url: https://llm.example.com/v1, weight: 3, models: [m], api_key_env: LLM_TOKEN}
  - {name: cpp, embedded: llamacpp, settings: {slots: 4, ctx_per_slot: 2048}}
workloads: [{name: chat, kind: chat}]
""",
    )
    first, second, cpp = scenario.hosts
    assert isinstance(first, ExternalHost) and (first.name, first.url) == ("host-1", "http://10.0.0.1:11434")
    assert (second.name, second.weight, second.models, second.api_key_env) == ("host-2", 3.0, ("m",), "LLM_TOKEN")
    assert isinstance(cpp, LlamacppHost) and (cpp.settings.slots, cpp.settings.ctx_per_slot) == (4, 2048)


def test_steady_users_default_covers_fixed_and_weighted_workloads(tmp_path: Path):
    scenario = load(
        tmp_path,
        "name: u\nmodel: m\nworkloads:\n  - {name: a, kind: chat, users: 3}\n"
        "  - {name: b, kind: chat}\n  - {name: c, kind: batch, weight: 2}\n",
    )
    assert scenario.load.users == 5  # 3 fixed + one per weighted workload


def test_load_shapes(tmp_path: Path):
    sweep = load(tmp_path, MINIMAL + "load: {shape: sweep, levels: [1, 2, 4], level_requests: 50, settle: 5s}\n").load
    assert isinstance(sweep, Sweep) and (sweep.levels, sweep.level_requests, sweep.settle) == ((1, 2, 4), 50, 5.0)
    probe = load(tmp_path, MINIMAL + "load: {shape: probe, burst: {slots: 4, max_queue: 512}}\n").load
    assert isinstance(probe, Probe) and probe.requests == 532  # 4 slots + 512 queued + 16 margin
    assert load(tmp_path, MINIMAL + "load: {shape: probe, burst: 20}\n").load.requests == 20


def test_payload_round_trips_and_is_plain_json(tmp_path: Path):
    scenario = load(
        tmp_path,
        MINIMAL
        + "options: {seed: per_request, think: high, keep_alive: -1}\n"
        + "variants:\n  - {name: v, hosts: {emulator: {settings: {num_parallel: 2, keep_alive: 10m}}}}\n",
    )
    payload = json.loads(json.dumps(scenario.to_payload()))
    assert payload["format"] == PAYLOAD_FORMAT
    assert Scenario.from_payload(payload) == scenario
    assert Scenario.from_payload(payload).to_payload() == payload


def test_from_payload_refuses_another_format():
    with pytest.raises(ScenarioError, match=r"^<payload>: not a scenario payload of format"):
        Scenario.from_payload({"format": "something/0", "scenario": {}})


def test_source_and_sha256(tmp_path: Path):
    scenario = load(tmp_path, MINIMAL)
    assert scenario.sha256 == hashlib.sha256(MINIMAL.encode()).hexdigest()
    assert scenario.source.text == MINIMAL
    assert scenario.source.file == str(tmp_path / "s.yaml")


def test_with_variant_applies_host_changes(tmp_path: Path):
    scenario = load(
        tmp_path,
        MINIMAL
        + "hosts: [{name: emu, embedded: emulator, settings: {num_parallel: 1, max_queue: 8}}]\n"
        + "variants:\n  - {name: two, hosts: {emu: {settings: {num_parallel: 2}, weight: 2}}}\n",
    )
    two = scenario.with_variant("two")
    assert (two.variant, two.variants) == ("two", ())
    assert (two.hosts[0].settings.num_parallel, two.hosts[0].settings.max_queue, two.hosts[0].weight) == (2, 8, 2.0)
    assert scenario.hosts[0].settings.num_parallel == 1  # the original is unchanged
    with pytest.raises(KeyError, match="no variant 'three'; variants are two"):
        scenario.with_variant("three")


def test_loaded_scenarios_are_frozen(tmp_path: Path):
    scenario = load(tmp_path, MINIMAL)
    with pytest.raises(ValidationError):
        scenario.name = "other"
    with pytest.raises(ValidationError):
        scenario.workloads[0].options.num_predict = 5
