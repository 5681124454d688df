"""``--model``: one model for every workload, whatever the scenario asked for."""

from pathlib import Path

import pytest

from loadgen.scenario.scenario import Scenario, ScenarioError, load_scenario

TWO_MODELS = """\
name: two
models: [llama3.2:latest, qwen3:0.6b]
hosts:
  - {name: a, url: "http://10.0.0.7:11434", models: [llama3.2:latest]}
  - {name: b, url: "http://10.0.0.8:11434", models: [qwen3:0.6b]}
workloads:
  - {name: chat, kind: chat}
  - {name: docs, kind: batch, model: qwen3:0.6b}
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(TWO_MODELS)
    return load_scenario(path)


def test_every_workload_asks_for_the_model_and_every_host_serves_it(scenario: Scenario):
    small = scenario.with_model("gemma3:270m")
    assert small.models == ("gemma3:270m",)
    assert [w.models for w in small.workloads] == [("gemma3:270m",), ("gemma3:270m",)]
    assert [h.models for h in small.hosts] == [None, None]
    # The rest of the scenario is untouched, and the override survives the trip to the workers.
    assert [h.url for h in small.hosts] == [h.url for h in scenario.hosts]
    assert Scenario.from_payload(small.to_payload()) == small


def test_a_model_name_with_spaces_is_refused_naming_the_option(scenario: Scenario):
    with pytest.raises(ScenarioError, match="--model: must be a model name without spaces"):
        scenario.with_model("llama 3")
