"""The suite in Locust's web UI: the LLM tab, the live chart page, the start form's options and run downloads."""

from loadgen.webui.extension import attach, scenario_choices

__all__ = ["attach", "scenario_choices"]
