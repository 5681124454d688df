"""The web UI serves ``/metrics`` for Prometheus: live during a run, and once the run has stopped, the same
totals as its ``requests.csv``."""

from __future__ import annotations

import json

import pytest

from tests.helpers import poll, read_records
from tests.telemetry.exposition import from_exposition, from_records
from tests.webui.conftest import fast_scenario

pytestmark = pytest.mark.integration


def test_metrics_under_the_web_ui_agree_with_the_run(web_ui):
    ui = web_ui(fast_scenario(), base_path="/loadtest")
    assert ui.swarm(4)["success"]
    poll(lambda: sum(from_exposition(ui.get("metrics").text)["requests"].values()) > 0, "requests on /metrics", 40)
    assert ui.get("metrics").headers["Content-Type"].startswith("text/plain")
    assert ui.post("stop").json()["success"]
    poll(lambda: ui.stats()["state"] == "stopped", "the test to stop", 40)
    [run_dir] = [p for p in ui.results.iterdir() if p.is_dir()]
    poll(lambda: json.loads((run_dir / "run.json").read_text())["ended_at"] is not None and
         from_exposition(ui.get("metrics").text) == from_records(read_records(run_dir / "requests.csv")),
         "/metrics to agree with requests.csv", 40)
