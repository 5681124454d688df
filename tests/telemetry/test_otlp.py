"""Locust's ``--otel`` carries the suite's metrics over OTLP/HTTP: names, units, buckets and attributes as
the GenAI semantic conventions define them, and totals that agree with ``requests.csv``."""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest
import yaml

from tests.helpers import REPO, locust_command, read_run
from tests.telemetry.exposition import WORKLOADS, from_records, scenario
from tests.telemetry.otlp_receiver import Export, Receiver, attributes, otlp_receiver

pytestmark = pytest.mark.integration

# The conventions' buckets (semconv gen-ai metrics, as listed in ../shared/reference/otel-genai.md).
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
SERVER_TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
SERVER_TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5]
CONVENTIONS = {  # name: (unit, kind, buckets)
    "gen_ai.client.operation.duration": ("s", "histogram", DURATION_BUCKETS),
    "gen_ai.client.token.usage": ("{token}", "histogram", TOKEN_BUCKETS),
    "gen_ai.client.operation.time_to_first_chunk": ("s", "histogram", DURATION_BUCKETS),
    "gen_ai.server.request.duration": ("s", "histogram", DURATION_BUCKETS),
    "gen_ai.server.time_to_first_token": ("s", "histogram", SERVER_TTFT_BUCKETS),
    "gen_ai.server.time_per_output_token": ("s", "histogram", SERVER_TPOT_BUCKETS),
}
REQUIRED_ATTRIBUTES = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "server.address",
                       "server.port"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Receiver, dict[str, dict]]:
    """A short run with ``--otel`` exporting every 500 ms to a receiver in this process."""
    tmp = tmp_path_factory.mktemp("otlp")
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(WORKLOADS, {"users": 3, "duration": "3s", "stop_timeout": "30s"},
                                            faults="http_503:every=5")))
    with otlp_receiver() as receiver:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
               "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_METRIC_EXPORT_INTERVAL": "500",
               "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "loadtest-under-test"}
        done = subprocess.run(locust_command(path, tmp / "results", "--otel"), cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=180)
    run = read_run(tmp / "results", done.returncode, done.stdout + done.stderr)
    assert done.returncode in (0, 1), run.output  # 1: Locust counted the 503s as failures
    return receiver, from_records(run.records)


def test_conventions_names_units_buckets_and_attributes(exported: tuple[Receiver, dict[str, dict]]) -> None:
    receiver, _ = exported
    for name, (unit, kind, buckets) in CONVENTIONS.items():
        export = receiver.last(name)
        assert export is not None, f"{name} was never exported"
        assert (export.scope, export.unit, export.kind) == ("ollama_loadtest", unit, kind)
        assert export.resource["service.name"] == "loadtest-under-test"  # Locust's provider, OTEL_* respected
        for point in export.points:
            assert list(point.explicit_bounds) == buckets
            keys = set(attributes(point.attributes))
            assert REQUIRED_ATTRIBUTES <= keys, f"{name}: {keys}"
            assert {"ollama_loadtest.workload", "ollama_loadtest.host"} <= keys
    tokens = receiver.last("gen_ai.client.token.usage")
    assert tokens is not None
    assert {attributes(p.attributes)["gen_ai.token.type"] for p in tokens.points} == {"input", "output"}
    durations = receiver.last("gen_ai.client.operation.duration")
    assert durations is not None
    failed = [attributes(p.attributes) for p in durations.points if "error.type" in attributes(p.attributes)]
    assert {a["error.type"] for a in failed} == {"busy_503"}
    assert all(isinstance(attributes(p.attributes)["server.port"], int) for p in durations.points)


def test_the_last_export_agrees_with_requests_csv(exported: tuple[Receiver, dict[str, dict]]) -> None:
    """The exporter's final export (at exit) carries every request: cumulative counts per workload."""
    receiver, expected = exported

    def totals(export: Export | None, keys: tuple[str, ...], value: str) -> dict[tuple[str, ...], float]:
        assert export is not None
        out: Counter[tuple[str, ...]] = Counter()
        for point in export.points:
            found = attributes(point.attributes)
            out[tuple(str(found.get(k, "")) for k in keys)] += float(getattr(point, value))
        return dict(out)

    assert totals(receiver.last("gen_ai.client.operation.duration"), ("ollama_loadtest.workload",), "count") \
        == expected["requests"]
    assert totals(receiver.last("gen_ai.client.token.usage"), ("ollama_loadtest.workload", "gen_ai.token.type"),
                  "sum") == expected["tokens"]
    assert totals(receiver.last("ollama_loadtest.errors"), ("ollama_loadtest.workload", "error.type"), "as_int") \
        == expected["errors"]


def test_locust_own_metrics_travel_alongside(exported: tuple[Receiver, dict[str, dict]]) -> None:
    """Ours join Locust's provider instead of replacing it: ``locust.client.duration`` is still exported."""
    receiver, _ = exported
    assert receiver.last("locust.client.duration") is not None
