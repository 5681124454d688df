"""Locust's start form shows the loaded scenario: its hosts in the Host field (no "no host attribute"
warning) and its user count; when the scenario's own plan decides the users, the form greys them out as
Locust does for a load shape and the scenario field says so. Read from the page's ``window.templateArgs``,
what Locust's React form is rendered from."""

from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import Stub, embedded_emulator
from tests.webui.conftest import WebUi, fast_scenario
from tests.webui.test_webui import template_args

pytestmark = pytest.mark.integration

URL = re.compile(r"http://127\.0\.0\.1:\d+")


def answers_as_ollama(url: str) -> bool:
    return "version" in requests.get(f"{url}/api/version", timeout=10).json()


def test_a_planned_run_shows_its_hosts_and_users_and_greys_the_users_out(web_ui, stub: Stub):
    scenario = fast_scenario()
    scenario["hosts"] = [embedded_emulator("emu"), {"name": "ext", "url": stub.url}]
    scenario["load"] = {"users": 6, "duration": "30s", "stop_timeout": "30s"}  # as scenarios/mixed.yaml
    ui: WebUi = web_ui(scenario)
    args = template_args(ui)

    embedded, external = args["host"].split(",")
    assert URL.fullmatch(embedded) and answers_as_ollama(embedded) and external == stub.url
    assert not args["missing_host_warning"] and not args["override_host_warning"]
    assert args["num_users"] == 6 and args["hide_common_options"]  # Locust's shape handling: the plan decides
    assert args["extra_options"]["scenario"]["help_text"] == ("loaded: webui, whose own plan decides the users, "
                                                              "not the fields above: 6 users for 30 s")

    answer = ui.swarm(1, host=args["host"])  # what the form sends back; its user count changes nothing
    assert answer["success"] and not answer["host"]  # the Host field is shown, not applied to user classes
    assert ui.post("stop").json()["success"]


def test_a_steady_run_without_a_duration_offers_the_scenarios_users(web_ui):
    ui: WebUi = web_ui(fast_scenario())  # steady, 6 users, until stopped: the form's users drive it
    args = template_args(ui)
    assert URL.fullmatch(args["host"]) and not args["missing_host_warning"]
    assert (args["num_users"], args["spawn_rate"]) == (6, 6) and not args["hide_common_options"]
    assert "plan decides" not in args["extra_options"]["scenario"]["help_text"]
