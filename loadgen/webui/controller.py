"""What the web UI needs of the suite's controller (``loadgen.plugin.Controller`` is the one there is).

The web UI types against this, not the plugin's class: the plugin attaches the web UI, so the web UI
importing the plugin would be an import circle.
"""

from __future__ import annotations

from typing import Protocol

from loadgen.locust_env import SuiteOptions
from loadgen.scenario.scenario import Scenario


class Controller(Protocol):
    """The start form's side of the controller: the options it changes, the API key, the loaded scenario
    and its hosts, loading another."""

    #: This process's API key (the start form's masked field may replace it).
    api_key: str

    @property
    def options(self) -> SuiteOptions:
        """Locust's parsed options, which the start form changes before a run."""
        ...

    @property
    def scenario(self) -> Scenario | None:
        """The scenario the next run runs (``None`` before one is loaded)."""
        ...

    @property
    def host_urls(self) -> dict[str, str]:
        """The loaded scenario's hosts: name -> URL (an embedded server's once started)."""
        ...

    def load(self) -> Scenario:
        """Load the scenario the options name; raises ``ScenarioError``."""
        ...

    def start_hosts(self) -> None:
        """Start the scenario's embedded servers and identify every host; raises ``ScenarioError`` or
        ``EmbeddedServerError``."""
        ...
