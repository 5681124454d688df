"""Typed access to what the suite reads of Locust's ``Environment``: its runner and its parsed options.

Locust types both as optional (``Runner | None``; ``argparse.Namespace | None``, where every option is an
attribute of any type), while every event the suite handles comes after Locust has set them. The
suite's own options are added by ``loadgen.plugin.add_arguments``; the others are Locust's.
"""

from __future__ import annotations

from typing import Protocol, cast

from locust.env import Environment
from locust.runners import Runner


class SuiteOptions(Protocol):
    """The parsed options the suite reads and writes (attribute names are argparse's ``dest``). An option
    added to ``plugin.add_arguments`` is read through here, so it is listed here too."""

    # the suite's (loadgen.plugin.add_arguments)
    scenario: str  # --scenario: a scenario file, or "" for the locustfile's own user classes
    variant: str  # --variant
    hosts: str  # --hosts: URL[,URL...] or name=URL[,name=URL...]
    model: str  # --model
    results_dir: str  # --results-dir
    api_key: str  # --api-key ("" once the plugin has taken it out: see plugin._take_api_key)
    capacity_min: float | None  # --capacity-min
    run_id: str  # --run-id
    no_report: bool  # --no-report
    metrics_port: int  # --metrics-port: 0 = no /metrics port of its own

    # Locust's
    headless: bool
    num_users: int | None  # -u
    spawn_rate: float | None  # -r
    run_time: int | None  # -t, in seconds
    stop_timeout: float  # --stop-timeout, in seconds
    web_base_path: str  # --web-base-path
    web_host: str  # --web-host: "" = every interface


def options_of(environment: Environment) -> SuiteOptions:
    """``environment.parsed_options`` as the suite reads it. Locust sets it before any event the suite
    handles; an environment made without options (a test's) has ``None``, and reading an option fails."""
    return cast(SuiteOptions, environment.parsed_options)


def runner_of(environment: Environment) -> Runner:
    """``environment.runner``: Locust creates it before it fires the events the suite handles (only a
    worker that is still connecting has none, which ``plugin._on_test_start`` checks for itself)."""
    runner = environment.runner
    if runner is None:
        raise RuntimeError("Locust has not created this process's runner yet")
    return runner
