"""The example scenarios load, are short by default, and survive the trip to a worker."""

import json
from pathlib import Path

import pytest

from loadgen.scenario.hosts import EmulatorHost
from loadgen.scenario.load import Steady
from loadgen.scenario.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
EXAMPLES = ["agent-loop.yaml", "chat.yaml", "chat-dataset.yaml", "batch.yaml", "mixed.yaml", "two-hosts.yaml",
            "shared-prefix.yaml"]


@pytest.fixture(params=EXAMPLES)
def example(request) -> Scenario:
    return load_scenario(SCENARIOS / request.param)


def test_examples_run_against_the_embedded_emulator_for_at_most_a_minute(example: Scenario):
    assert all(isinstance(host, EmulatorHost) for host in example.hosts)
    assert isinstance(example.load, Steady) and example.load.duration <= 60
    assert example.description


def test_examples_round_trip_through_a_json_payload(example: Scenario):
    payload = json.loads(json.dumps(example.to_payload()))
    assert Scenario.from_payload(payload) == example


def test_example_prompt_files_are_read():
    chat = load_scenario(SCENARIOS / "chat.yaml").workloads[0]
    assert len(chat.prompts.items) == 20 and chat.prompts.order == "random"
    documents = load_scenario(SCENARIOS / "batch.yaml").workloads[0].prompts.items
    assert len(documents) == 6 and all("\n" in document for document in documents)
    tasks = load_scenario(SCENARIOS / "agent-loop.yaml").workloads[0].prompts.items
    assert len(tasks) == 8 and sum(isinstance(task, tuple) for task in tasks) == 2


def test_mixed_has_all_three_kinds_and_two_variants():
    mixed = load_scenario(SCENARIOS / "mixed.yaml")
    assert sorted(workload.kind for workload in mixed.workloads) == ["agent_loop", "batch", "chat"]
    assert [variant.name for variant in mixed.variants] == ["1-slot", "2-slots"]
    assert mixed.with_variant("2-slots").hosts[0].settings.num_parallel == 2
    assert mixed.load.users == 6
