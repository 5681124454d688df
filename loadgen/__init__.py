"""Load tests for Ollama and other local LLM servers, on Locust: the public API.

Build a locustfile on the suite's user classes, configured the Locust way, by class attributes::

    from loadgen import ChatUser

    class Support(ChatUser):
        host = "http://127.0.0.1:11434"
        model = "llama3.2:1b"
        turns = 3
        think_time = {"min": 1, "max": 3}

``locust -f that_file.py`` then records every request exactly (``requests.csv``), adds the LLM tab to the
web UI and writes the report at the end, as a scenario file would. The user classes import Locust (and
so patch the standard library with gevent) only when first used from here; the scenario names do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadgen.scenario import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from loadgen.users import AgentLoopUser, BatchUser, ChatUser, LLMUser

__all__ = ["AgentLoopUser", "BatchUser", "ChatUser", "LLMUser", "Scenario", "ScenarioError", "load_scenario"]

_USER_CLASSES = frozenset({"AgentLoopUser", "BatchUser", "ChatUser", "LLMUser"})


def __getattr__(name: str) -> Any:
    """The user classes, imported on first use with the suite's Locust plugin registered."""
    if name not in _USER_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import loadgen.users
    from loadgen.plugin import register

    register()
    return getattr(loadgen.users, name)
