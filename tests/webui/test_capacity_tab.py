"""A capacity search started from the web UI's start form, its progress in the LLM capacity tab."""

from __future__ import annotations

import pytest

from tests.helpers import emulator_scenario, poll
from tests.webui.test_webui import template_args

pytestmark = pytest.mark.integration


def capacity_rows(ui) -> list[dict[str, str]]:
    tables = {t["key"]: t["data"] for t in ui.stats().get("extended_stats", [])}
    return tables.get("llm_capacity", [])


def test_the_start_form_starts_a_capacity_search_and_the_tab_follows_it(web_ui):
    scenario = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 1, "think_time": 0}], speed=10,
                                 slo={"e2e_p95": 0.6},
                                 load={"shape": "capacity", "start": 2, "max_users": 6, "probe_duration": "1.5s",
                                       "settle": "0.3s", "min_requests": 10, "stop_timeout": "30s"})
    ui = web_ui(scenario)
    form = template_args(ui)
    assert form["hide_common_options"] and form["num_users"] == 6  # the search, not the fields, decides
    assert ui.swarm(1)["success"]

    (running,) = poll(lambda: [row for row in capacity_rows(ui) if row["verdict"] == "running"],
                      "a probe running in the capacity tab", 60)
    rows = poll(lambda: (rows := capacity_rows(ui)) and rows[-1]["probe"] == "answer" and rows,
                "the search's answer in the capacity tab", 180)
    probes, answer = rows[:-1], rows[-1]
    assert probes[0]["probe"].startswith("cap1-") and probes[0]["level"] == "2 users"
    # The tab showed a probe while it ran (whichever the poll caught), with the load it then settled on.
    (ran,) = [row for row in probes if row["probe"] == running["probe"]]
    assert running["level"] == ran["level"]
    assert {row["verdict"] for row in probes} <= {"pass", "fail", "close"}
    assert answer["limiting"].startswith("capacity: ") and answer["verdict"] in ("found", "bound")
