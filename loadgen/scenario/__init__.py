"""The scenario file: YAML in, typed and frozen objects out, validated once at the door (pure: no Locust, no I/O
beyond reading the file and its prompt files)."""

from loadgen.scenario.errors import ScenarioError
from loadgen.scenario.scenario import Scenario, check, load_scenario

__all__ = ["Scenario", "ScenarioError", "check", "load_scenario"]
