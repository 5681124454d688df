"""Locust users that talk to an LLM server (chat, agent loops, batches), which classes a run runs, and what
each load-generating node holds for them: the run's router, connections, record sink and pacing."""

from loadgen.users.agent import AgentLoopUser
from loadgen.users.base import LLMUser
from loadgen.users.batch import BatchUser
from loadgen.users.chat import ChatUser
from loadgen.users.declared import ScenarioUser, classes_for, declared_classes, scenario_of_classes

__all__ = [
    "AgentLoopUser", "BatchUser", "ChatUser", "LLMUser", "ScenarioUser", "classes_for", "declared_classes",
    "scenario_of_classes",
]
