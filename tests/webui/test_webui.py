"""The LLM tab, chart, start form and downloads through a real ``locust`` web UI and its own endpoints."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis.schema import RECORD_COLUMNS, SERVER_METRICS_COLUMNS
from tests.helpers import REPO, Stub, free_port, poll, stop_process
from tests.webui.conftest import SECRET, WebUi, fast_scenario

pytestmark = pytest.mark.integration


def template_args(ui: WebUi) -> dict:
    page = ui.get("").text
    return json.loads(re.search(r"templateArgs = (\{.*?\});?\s*$", page, re.M).group(1))


def number(cell: str) -> float:
    return float(cell.split()[0])


def seconds(cell: str) -> float:
    value, unit = cell.split()
    return float(value) / 1000 if unit == "ms" else float(value)


def test_llm_tab_chart_and_downloads_live_under_a_base_path(web_ui):
    ui = web_ui(fast_scenario(), base_path="/loadtest")
    args = template_args(ui)
    assert args["extended_tabs"] == [{"title": "LLM", "key": "llm"}, {"title": "LLM capacity", "key": "llm_capacity"}]
    form = args["extra_options"]
    assert "scenarios/chat.yaml" in form["scenario"]["choices"]  # the picker lists the repository's scenarios
    assert form["scenario"]["default_value"] in form["scenario"]["choices"]  # and shows the one loaded
    assert form["api_key"]["is_secret"] and form["api_key"]["default_value"] == ""  # though started with one

    assert ui.swarm(6, scenario=form["scenario"]["default_value"])["success"]

    def rows_with_slots():
        rows = ui.llm_rows()
        done = len(rows) == 2 and all(int(r["requests"]) >= 20 and r["slots"] != "-" for r in rows)
        return rows if done else None

    rows = poll(rows_with_slots, "both workloads' rows with an inferred slot count", 40)
    assert [(r["workload"], r["host"], r["model"]) for r in rows] == [
        ("agent", "emu", "llama3.2:latest"), ("chat", "emu", "llama3.2:latest")]
    for row in rows:
        assert (row["failures"], row["busy_503"]) == ("0", "0")
        assert number(row["tok_s"]) > 0 and number(row["gen_tok_s"]) > 0
        assert 0 < seconds(row["ttft_p50"]) <= seconds(row["ttft_p95"])
        assert seconds(row["e2e_p95"]) > 0 and row["slot_wait_p95"] != "-"  # Ollama native API: known
        # six users on two slots: the emulator's own count, with its configured slots
        assert re.fullmatch(r"[0-2] / 2( \(\+\d+ queued\))?", row["busy"]), row["busy"]
        assert row["slots"] == "2"  # inferred from the records: the emulator's configured num_parallel

    chart = ui.get("llm/chart")
    assert chart.headers["Content-Type"].startswith("text/html") and chart.text.count("<svg") == 2
    for name in ("tok_s", "busy"):
        svg = ui.get(f"llm/chart/{name}.svg")
        assert svg.headers["Content-Type"] == "image/svg+xml" and "<polyline" in svg.text
    assert "emu llama3.2:latest: 2 slots inferred" in ui.get("llm/chart/busy.svg").text
    assert "emu llama3.2:latest (server)" in ui.get("llm/chart/busy.svg").text

    download = ui.get("llm/run/requests.csv")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    records = list(csv.reader(io.StringIO(download.text)))
    assert tuple(records[0]) == RECORD_COLUMNS and len(records) > 40
    report = ui.get("llm/report")
    assert report.status_code == 200 and report.text.lstrip().lower().startswith("<!doctype html")
    assert "slots" in report.text.lower()

    assert ui.post("stop").json()["success"]
    poll(lambda: ui.stats()["state"] == "stopped", "the test to stop", 40)
    (run_dir,) = ui.results.iterdir()
    with (run_dir / "server_metrics.csv").open() as f:
        metrics = list(csv.reader(f))
    assert tuple(metrics[0]) == SERVER_METRICS_COLUMNS and {m[1] for m in metrics[1:]} == {"emu"}
    assert max(int(m[2]) for m in metrics[1:]) == 2 and {m[4] for m in metrics[1:]} <= {"", "2"}

    # the key given at start never reaches a page, a download, the run's files or the log
    seen = [ui.get(p).text for p in ("", "stats/requests", "llm/chart", "llm/chart/busy.svg", "llm/run/run.json")]
    seen += [download.text, report.text, ui.output()] + [p.read_text() for p in run_dir.iterdir() if p.is_file()]
    assert not [text for text in seen if SECRET in text]


def test_the_form_loads_the_scenario_it_picks_and_refuses_a_bad_one_with_its_reason(web_ui, tmp_path):
    ui = web_ui(fast_scenario())
    (tmp_path / "broken.yaml").write_text("name: broken\nworkloads: 3\n")
    other = fast_scenario("other")
    other["workloads"] = [{"name": "summaries", "kind": "chat", "turns": 1, "think_time": 0}]
    other["load"] = {"users": 3, "duration": "60s", "stop_timeout": "30s"}  # runs its own plan
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    choices = template_args(ui)["extra_options"]["scenario"]["choices"]
    assert {str(tmp_path / "broken.yaml"), str(tmp_path / "other.yaml")} <= set(choices)  # files beside it

    answer = ui.swarm(2, scenario=str(tmp_path / "broken.yaml"))
    assert answer["success"] is False
    assert answer["message"] == f"{tmp_path / 'broken.yaml'}:2:1: workloads: must be a list, got 3"
    answer = ui.swarm(2, scenario="/etc/hostname")
    assert answer["success"] is False and "not one of the listed scenarios" in answer["message"]
    assert ui.stats()["state"] == "ready"  # nothing started
    # the form still offers the scenario that is loaded, not the refused one
    assert template_args(ui)["extra_options"]["scenario"]["default_value"].endswith("scenario0.yaml")

    for start in range(2):  # the form's user count (1) changes neither run of the scenario's plan
        assert ui.swarm(1, scenario=str(tmp_path / "other.yaml"))["success"]
        poll(lambda: ui.stats()["user_count"] == 3, f"start {start + 1}: the plan's three users", 20)
        rows = poll(ui.llm_rows, "the picked scenario's rows", 30)
        assert {r["workload"] for r in rows} == {"summaries"}
        assert ui.post("stop").json()["success"]
        poll(lambda: ui.stats()["state"] == "stopped", "the test to stop", 40)
    assert ui.get("llm/chart").status_code == 200  # the pages work without a base path too
    assert "Traceback" not in ui.output()


def test_the_llm_tab_on_a_distributed_master(web_ui):
    port = free_port()
    ui = web_ui(fast_scenario(), "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port))
    worker = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles"), "--worker",
                               "--master-host", "127.0.0.1", "--master-port", str(port)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: ui.stats().get("worker_count") == 1, "the worker to connect", 30)
        refused = ui.swarm(6, api_key="sk-typed-on-the-master")  # the workers send the requests, not the master
        assert refused["success"] is False and "each worker's environment" in refused["message"]
        assert ui.stats()["state"] == "ready"
        assert ui.swarm(6)["success"]
        def rows_with_slots():
            rows = [r for r in ui.llm_rows() if r["slots"] != "-" and int(r["requests"]) >= 20]
            return rows if len(rows) == 2 else None

        rows = poll(rows_with_slots, "both workloads' rows from the worker's records", 40)
        assert {r["workload"] for r in rows} == {"agent", "chat"} and all(number(r["tok_s"]) > 0 for r in rows)
        assert "<polyline" in ui.get("llm/chart/tok_s.svg").text
        assert ui.post("stop").json()["success"]
    finally:
        stop_process(worker)


def test_a_key_typed_in_the_form_is_sent_by_this_process_and_shown_nowhere(web_ui, stub: Stub, token: str):
    """The masked field: a typed key replaces the one locust started with (``--api-key SECRET``) for this
    run; an empty field goes back to it. Neither key shows in a page, the log or the run's files."""
    ui = web_ui({
        "name": "typed-key", "model": "llama3.2:latest", "hosts": [{"name": "stub", "url": stub.url}],
        "options": {"num_predict": 8}, "workloads": [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0}],
        "load": {"users": 2, "duration": "2s", "stop_timeout": "20s"},
    })
    for count, (typed, sent) in enumerate(((token, token), ("", SECRET)), start=1):
        before = len(stub.requests())
        assert ui.swarm(2, api_key=typed)["success"]
        poll(lambda count=count: len(ended_runs(ui)) == count, f"run {count} to end", 40)
        seen = stub.requests().iloc[before:]
        assert (seen.path == "/api/chat").sum() >= 4
        assert (seen.authorization == f"Bearer {sent}").all(), seen.authorization.unique()  # the probe too

    runs = ended_runs(ui)  # a plan that ends by itself starts afresh the second time
    assert [(run / "requests.csv").read_text().count("\n") > 4 for run in runs] == [True, True]
    run_files = [p.read_text() for run in runs for p in run.iterdir() if p.is_file()]
    pages = [ui.get(p).text for p in ("", "stats/requests", "llm/chart", "llm/run/requests.csv", "llm/run/run.json")]
    for key in (token, SECRET):
        assert not [text for text in [*pages, *run_files, ui.output()] if key in text]


def ended_runs(ui: WebUi) -> list[Path]:
    """The UI's run directories whose ``run.json`` says the run has ended, oldest first."""
    return [run for run in sorted(ui.results.glob("*")) if (run / "run.json").exists()
            and json.loads((run / "run.json").read_text()).get("ended_at")]
