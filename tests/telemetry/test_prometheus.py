"""A real Prometheus server (Debian's ``prometheus``) scrapes the master of a run with two workers; what
it stored, read back through its HTTP API, agrees with ``requests.csv`` per workload."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from loadgen.telemetry import catalog as c
from tests.distributed.cluster import Cluster, assert_every_request_recorded_once
from tests.helpers import free_port, poll, stop_process
from tests.telemetry.exposition import WORKLOADS, from_records, label, scenario

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (Debian: apt-get install prometheus; "
                                                  ".ci/run installs it)"),
]
WORKERS = 2


class Prometheus:
    """A Prometheus server on a loopback port scraping one target every second."""

    def __init__(self, tmp: Path, target: str) -> None:
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "loadtest", "static_configs": [{"targets": [target]}]}],
        }))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = tmp / "prometheus.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}"], stdout=out, stderr=subprocess.STDOUT)
        poll(self.ready, "Prometheus to be ready", 60)

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def query(self, promql: str, **params: Any) -> list[dict[str, Any]]:
        """``/api/v1/query`` (or ``query_range`` with ``start``, ``end``, ``step``): the result list."""
        path = "query_range" if "step" in params else "query"
        answer = requests.get(f"{self.url}/api/v1/{path}", params={"query": promql, **params}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]


@pytest.fixture
def prometheus_and_cluster(tmp_path: Path) -> Iterator[tuple[Prometheus, Cluster, int]]:
    metrics_port = free_port()
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{metrics_port}")
    cluster = Cluster(tmp_path)
    try:
        yield prometheus, cluster, metrics_port
    finally:
        cluster.kill()
        stop_process(prometheus.proc)


def test_prometheus_counters_agree_with_requests_csv(prometheus_and_cluster: tuple[Prometheus, Cluster, int],
                                                     tmp_path: Path) -> None:
    prometheus, cluster, metrics_port = prometheus_and_cluster
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(WORKLOADS, {"users": 4, "duration": "5s", "stop_timeout": "30s"},
                                            faults="http_503:every=7")))
    started = time.time()
    port = cluster.start_master(path, WORKERS, "--metrics-port", str(metrics_port), "--web-host", "127.0.0.1")
    for _ in range(WORKERS):
        cluster.start_worker(port)
    run = cluster.wait(180)
    assert_every_request_recorded_once(run, WORKERS)
    expected = from_records(run.records)
    assert expected["errors"], "the fault spec should have made some requests fail"

    workload, token_type, error_type = label(c.WORKLOAD), label(c.TOKEN_TYPE), label(c.ERROR_TYPE)

    def stored(promql: str, *keys: str) -> dict[tuple[str, ...], float]:
        # last_over_time: the series went stale when the master exited; a range selector still reads them
        result = prometheus.query(f"sum by ({', '.join(keys)}) (last_over_time({promql}[10m]))")
        return {tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1]) for r in result}

    assert stored("gen_ai_client_operation_duration_seconds_count", workload) == expected["requests"]
    assert stored("gen_ai_client_token_usage_sum", workload, token_type) == expected["tokens"]
    assert stored("ollama_loadtest_errors_total", workload, error_type) == expected["errors"]

    # Live: Prometheus saw the count grow during the run, not one jump at its end.
    series = prometheus.query("sum(gen_ai_client_operation_duration_seconds_count)", start=started, end=time.time(),
                              step=1)
    values = sorted({float(v) for _, v in series[0]["values"]})
    assert len(values) >= 3 and values[-1] == len(run.records), values
    busy = prometheus.query("max_over_time(ollama_loadtest_server_slots_total[10m])")
    assert [float(r["value"][1]) for r in busy] == [2.0]  # the emulator's two slots, from the master's sampler
