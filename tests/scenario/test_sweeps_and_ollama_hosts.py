"""``embedded: ollama`` hosts (their settings become Ollama's environment) and ``variants: {sweep: ...}``
(one variant per setting value, or per combination of values)."""

from pathlib import Path

import pytest

from loadgen.scenario.hosts import EmulatorHost, LlamacppHost, OllamaHost
from loadgen.scenario.scenario import Scenario, ScenarioError, load_scenario


def load(tmp_path: Path, text: str) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(path)


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, text)
    (one,) = caught.value.problems
    return str(one)


OLLAMA = """name: t
model: llama3.2
hosts:
  - name: box
    embedded: ollama
    settings: {SETTINGS}
workloads:
  - {name: chat, kind: chat}
"""


def ollama(settings: str, variants: str = "") -> str:
    return OLLAMA.replace("{SETTINGS}", settings) + (f"variants: {variants}\n" if variants else "")


def test_ollama_settings_become_its_environment_variables(tmp_path):
    scenario = load(tmp_path, ollama("{num_parallel: 4, max_queue: 16, keep_alive: 10m, max_loaded_models: 1, "
                                     "context_length: 8192, flash_attention: true, kv_cache_type: q8_0, "
                                     "env: {OLLAMA_DEBUG: 1, OLLAMA_SCHED_SPREAD: false}}"))
    (host,) = scenario.hosts
    assert isinstance(host, OllamaHost)
    assert host.settings.environment() == {
        "OLLAMA_NUM_PARALLEL": "4", "OLLAMA_MAX_QUEUE": "16", "OLLAMA_KEEP_ALIVE": "10m",
        "OLLAMA_MAX_LOADED_MODELS": "1", "OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_FLASH_ATTENTION": "true",
        "OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_DEBUG": "1", "OLLAMA_SCHED_SPREAD": "false",
    }
    assert (host.settings.binary, host.settings.pull, host.settings.start_timeout) == (None, False, 60.0)


def test_unset_ollama_settings_leave_ollamas_defaults(tmp_path):
    (host,) = load(tmp_path, ollama("{}")).hosts
    assert isinstance(host, OllamaHost) and host.settings.environment() == {}


@pytest.mark.parametrize("settings, expect", [
    ("{env: {OLLAMA_NUM_PARALLEL: 2}}", "set OLLAMA_NUM_PARALLEL with the setting num_parallel"),
    ("{env: {OLLAMA_HOST: 0.0.0.0}}", "OLLAMA_HOST is the run's to set"),
    ("{env: {1BAD: x}}", "is not an environment variable name"),
    ("{kv_cache_type: q5_1}", "must be one of f16, q8_0, q4_0"),
    ("{num_parallel: 0}", "must be >= 1"),
    ("{start_timeout: 0s}", "start_timeout"),
    ("{num_paralel: 2}", "did you mean 'num_parallel'"),
])
def test_bad_ollama_settings_are_one_clear_line(tmp_path, settings, expect):
    assert expect in problem(tmp_path, ollama(settings))


def test_a_sweep_is_one_variant_per_value_remembering_it(tmp_path):
    scenario = load(tmp_path, ollama("{num_parallel: 1}", "{sweep: {num_parallel: [1, 2, 4, 8]}}"))
    variants = scenario.variant_list
    assert [v.name for v in variants] == ["num_parallel-1", "num_parallel-2", "num_parallel-4", "num_parallel-8"]
    assert [v.swept for v in variants] == [{"num_parallel": n} for n in (1, 2, 4, 8)]
    four = scenario.with_variant("num_parallel-4")
    assert four.swept == {"num_parallel": 4} and four.variant == "num_parallel-4" and four.variants == ()
    (host,) = four.hosts
    assert isinstance(host, OllamaHost) and host.settings.environment()["OLLAMA_NUM_PARALLEL"] == "4"
    assert Scenario.from_payload(four.to_payload()) == four  # workers get the swept values too


def test_two_settings_sweep_their_product_on_every_host_that_has_them(tmp_path):
    text = """name: t
model: llama3.2
api: openai
hosts:
  - {name: emu, embedded: emulator}
  - {name: cpp, embedded: llamacpp}
workloads: [{name: chat, kind: chat}]
variants: {sweep: {num_parallel: [1, 2], max_queue: [4, 512]}}
"""
    scenario = load(tmp_path, text)
    assert [v.name for v in scenario.variant_list] == [
        "num_parallel-1.max_queue-4", "num_parallel-1.max_queue-512",
        "num_parallel-2.max_queue-4", "num_parallel-2.max_queue-512"]
    run = scenario.with_variant("num_parallel-2.max_queue-4")
    emu, cpp = run.hosts
    assert isinstance(emu, EmulatorHost) and (emu.settings.num_parallel, emu.settings.max_queue) == (2, 4)
    assert isinstance(cpp, LlamacppHost) and cpp.settings == LlamacppHost(name="cpp").settings  # has neither


def test_a_sweep_can_name_its_hosts(tmp_path):
    text = """name: t
model: llama3.2
hosts:
  - {name: a, embedded: emulator}
  - {name: b, embedded: emulator}
workloads: [{name: chat, kind: chat}]
variants: {sweep: {num_parallel: [2, 3]}, hosts: [b]}
"""
    a, b = load(tmp_path, text).with_variant("num_parallel-3").hosts
    assert isinstance(a, EmulatorHost) and isinstance(b, EmulatorHost)
    assert (a.settings.num_parallel, b.settings.num_parallel) == (None, 3)


@pytest.mark.parametrize("variants, expect", [
    ("{sweep: {num_paralel: [1, 2]}}", "variants.sweep.num_paralel: no host it changes has a setting 'num_paralel'; "
                                      "did you mean 'num_parallel'?"),
    ("{sweep: {num_parallel: [1, 2, 1]}}", "variants.sweep.num_parallel: lists 1 twice"),
    ("{sweep: {num_parallel: [2, 0]}}", "variants.sweep.num_parallel[1]: on host box: must be >= 1, got 0"),
    ("{sweep: {num_parallel: [1]}, hosts: [bx]}", "variants.hosts[0]: no host named 'bx'"),
    ("{sweep: {}}", "variants.sweep: must not be empty"),
    ("{swep: {num_parallel: [1]}}", "did you mean 'sweep'?"),
    ("{sweep: {num_parallel: [1, 2, 3, 4, 5, 6, 7, 8], max_queue: [1, 2, 3, 4, 5, 6, 7, 8, 9]}}",
     "makes 72 runs; at most 64"),
])
def test_bad_sweeps_are_one_clear_line(tmp_path, variants, expect):
    assert expect in problem(tmp_path, ollama("{}", variants))


def test_a_running_server_cannot_be_swept(tmp_path):
    text = """name: t
model: llama3.2
hosts: [{name: mine, url: "http://127.0.0.1:11434"}]
workloads: [{name: chat, kind: chat}]
variants: {sweep: {num_parallel: [1, 2]}}
"""
    assert "a running server (url:) cannot be restarted with other settings" in problem(tmp_path, text)


def test_named_variants_keep_working_and_carry_no_sweep_values(tmp_path):
    text = ollama("{num_parallel: 1}", "[{name: four, hosts: {box: {settings: {num_parallel: 4}}}}]")
    scenario = load(tmp_path, text)
    assert [v.name for v in scenario.variant_list] == ["four"]
    assert scenario.with_variant("four").swept == {}
