"""``--metrics-port`` on a real headless run: the exposition a scraper sees during the run, and at its end
numbers equal to ``requests.csv``; every metric of the catalog under its Prometheus name and type."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from loadgen.telemetry import catalog as c
from tests.helpers import REPO, LocustRun, free_port, locust_command, read_run, stop_process
from tests.telemetry.exposition import WORKLOADS, from_exposition, from_records, label, samples, scenario

pytestmark = pytest.mark.integration

#: Each catalog metric as Prometheus names it (hand-derived from the OTel -> Prometheus rules: dots to
#: underscores; unit s -> _seconds, {request}/s -> _per_second, {...} -> nothing; counters end in _total).
PROMETHEUS_NAMES = {
    "gen_ai.client.operation.duration": ("gen_ai_client_operation_duration_seconds", "histogram"),
    "gen_ai.client.token.usage": ("gen_ai_client_token_usage", "histogram"),
    "gen_ai.client.operation.time_to_first_chunk": ("gen_ai_client_operation_time_to_first_chunk_seconds",
                                                    "histogram"),
    "gen_ai.server.request.duration": ("gen_ai_server_request_duration_seconds", "histogram"),
    "gen_ai.server.time_to_first_token": ("gen_ai_server_time_to_first_token_seconds", "histogram"),
    "gen_ai.server.time_per_output_token": ("gen_ai_server_time_per_output_token_seconds", "histogram"),
    "ollama_loadtest.slot.wait": ("ollama_loadtest_slot_wait_seconds", "histogram"),
    "ollama_loadtest.errors": ("ollama_loadtest_errors", "counter"),  # the family; its series adds _total
    "ollama_loadtest.requests.in_flight": ("ollama_loadtest_requests_in_flight", "gauge"),
    "ollama_loadtest.server.slots.busy": ("ollama_loadtest_server_slots_busy", "gauge"),
    "ollama_loadtest.server.queued": ("ollama_loadtest_server_queued", "gauge"),
    "ollama_loadtest.server.slots.total": ("ollama_loadtest_server_slots_total", "gauge"),
    "ollama_loadtest.slots.inferred": ("ollama_loadtest_slots_inferred", "gauge"),
    "ollama_loadtest.stage.users": ("ollama_loadtest_stage_users", "gauge"),
    "ollama_loadtest.stage.rate": ("ollama_loadtest_stage_rate_per_second", "gauge"),
}
RATE = 8.0  # arrivals per second


@dataclass
class ScrapedRun:
    scrapes: list[str]  # every exposition read during the run, in order
    run: LocustRun


@pytest.fixture(scope="module")
def scraped_run(tmp_path_factory: pytest.TempPathFactory) -> ScrapedRun:
    """A 4-second open-loop run (one request in six answered 503) scraped every 0.2 s until it exits."""
    tmp = tmp_path_factory.mktemp("metrics-port")
    path = tmp / "scenario.yaml"
    load = {"shape": "arrivals", "stages": [{"rate": RATE, "duration": "4s"}], "max_users": 8, "stop_timeout": "30s"}
    path.write_text(yaml.safe_dump(scenario(WORKLOADS, load, faults="http_503:every=6")))
    port = free_port()
    argv = locust_command(path, tmp / "results", "--metrics-port", str(port), "--web-host", "127.0.0.1")
    log = tmp / "locust.log"
    scrapes: list[str] = []
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                scrapes.append(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
    finally:
        stop_process(proc)
    run = read_run(tmp / "results", proc.returncode, log.read_text())
    assert run.returncode in (0, 1), run.output  # 1: Locust counted the 503s as failures
    assert scrapes, f"/metrics never answered\n{run.output}"
    return ScrapedRun(scrapes, run)


def test_the_last_scrape_agrees_with_requests_csv(scraped_run: ScrapedRun) -> None:
    """The run waits for a scrape after its last record, so the last exposition counts every request."""
    records = scraped_run.run.records
    expected = from_records(records)
    assert expected["errors"].get(("chat", "busy_503"), 0) + expected["errors"].get(("batch", "busy_503"), 0) > 0
    assert from_exposition(scraped_run.scrapes[-1]) == expected


def test_numbers_are_live(scraped_run: ScrapedRun) -> None:
    """Scrapes during the run saw part of the requests: the numbers grow as records arrive, not at the end."""
    total = len(scraped_run.run.records)
    seen = [sum(from_exposition(text)["requests"].values()) for text in scraped_run.scrapes]
    assert any(0 < n < total for n in seen), seen
    assert seen == sorted(seen)  # counters only grow


def test_every_metric_under_its_prometheus_name_and_type(scraped_run: ScrapedRun) -> None:
    families = {f.name: f for text in scraped_run.scrapes for f in text_string_to_metric_families(text)
                if f.samples}
    for metric in c.METRICS:
        name, kind = PROMETHEUS_NAMES[metric.name]
        assert name in families, f"{metric.name}: no {name} in {sorted(families)}"
        assert (families[name].type, families[name].documentation) == (kind, metric.description)


def test_attributes(scraped_run: ScrapedRun) -> None:
    """Each request series names its operation, model, server and workload; gauges show the stage's rate and
    the server's configured slots."""
    port = int(scraped_run.run.info["hosts"][0]["url"].rsplit(":", 1)[1].rstrip("/"))
    points = [p for text in scraped_run.scrapes for p in samples(text)]
    durations = [labels for name, labels, _ in points if name == "gen_ai_client_operation_duration_seconds_count"]
    operations = {labels[label(c.WORKLOAD)]: labels[label(c.OPERATION)] for labels in durations}
    assert operations == {"chat": "chat", "batch": "text_completion"}  # batch sends /api/generate
    for labels in durations:
        assert labels[label(c.MODEL)] == "llama3.2:latest"
        assert (labels[label(c.ADDRESS)], labels[label(c.PORT)]) == ("127.0.0.1", str(port))
        assert (labels[label(c.HOST)], labels[label(c.PROVIDER)]) == ("emu", "ollama")
    tokens = {labels[label(c.TOKEN_TYPE)] for name, labels, _ in points if name == "gen_ai_client_token_usage_count"}
    assert tokens == {"input", "output"}
    assert {v for name, _, v in points if name == "ollama_loadtest_stage_rate_per_second"} == {RATE}
    assert {v for name, _, v in points if name == "ollama_loadtest_server_slots_total"} == {2.0}


def test_dashboard_queries_only_exported_metrics(scraped_run: ScrapedRun) -> None:
    """Every metric the provisioned Grafana dashboard queries is one a run exports."""
    import json
    import re

    points = [p for text in scraped_run.scrapes for p in samples(text)]
    exported = {name for name, _, _ in points}
    labels = {key for _, found, _ in points for key in found}
    dashboard = json.loads((REPO / "docker/monitoring/grafana/dashboards/ollama-loadtest.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [variable["definition"] for variable in dashboard["templating"]["list"]]
    names = {m for expr in exprs for m in re.findall(r"\b(?:gen_ai|ollama_loadtest|error)_[a-z_]+\b", expr)}
    queried = names - labels  # the rest are label names (selectors, by-clauses, label_values)
    assert queried <= exported, sorted(queried - exported)
    assert names & labels >= {"ollama_loadtest_workload", "ollama_loadtest_host", "gen_ai_request_model"}
    assert {"gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
            "gen_ai_client_operation_duration_seconds_bucket", "ollama_loadtest_server_slots_busy",
            "ollama_loadtest_server_slots_total", "ollama_loadtest_server_queued",
            "ollama_loadtest_errors_total"} <= queried


def test_without_the_extra_metrics_port_is_refused_in_one_line(tmp_path: Path) -> None:
    """Where OpenTelemetry is not installed (hidden here by an import hook), ``--metrics-port`` is refused with
    what to install, and the same run without it works as before."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('opentelemetry', 'prometheus_client'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(WORKLOADS[:1], {"users": 1, "duration": "1s", "stop_timeout": "30s"})))
    env = {"PYTHONPATH": str(hide), "PATH": "/usr/bin:/bin"}
    refused = subprocess.run(locust_command(path, tmp_path / "r1", "--metrics-port", str(free_port())), cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --metrics-port: live metrics need the [otel] extra: pip install 'ollama-loadtest[otel]'")
    assert "Traceback" not in refused.stderr
    plain = subprocess.run(locust_command(path, tmp_path / "r2"), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert read_run(tmp_path / "r2", 0, plain.stderr).records.shape[0] > 0
