"""The server-metrics sampler: parsing each server's answer, and polling a real emulator."""

from __future__ import annotations

import csv
import json
import urllib.request
from pathlib import Path

import pytest

from analysis.schema import SERVER_METRICS_COLUMNS, HostInfo
from loadgen.run.sampler import (
    Sample,
    ServerSampler,
    emulator_samples,
    host_row,
    llamacpp_metrics_sample,
    llamacpp_slots_sample,
    prometheus_values,
    sampled_kind,
)
from tests.helpers import free_port, poll

METRICS = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 412
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 4
# HELP llamacpp:requests_deferred Number of requests deferred.
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 3
"""

STATE = {  # /_emulator/state with one model loaded, one loading for a waiting request, one idle
    "models": {
        "llama3.2:latest": {"loaded": True, "loading": False, "busy_slots": 2, "waiting": 3, "pending": 0,
                            "loads": 1, "num_parallel": 2, "context_length": 4096},
        "qwen3:0.6b": {"loaded": False, "loading": True, "busy_slots": 0, "waiting": 0, "pending": 1, "loads": 0},
        "gemma3:270m": {"loaded": False, "loading": False, "busy_slots": 0, "waiting": 0, "pending": 0, "loads": 0},
    },
    "pending": 1,
}


def test_prometheus_values_reads_the_named_unlabelled_gauges():
    values = prometheus_values(METRICS, ["llamacpp:requests_processing", "llamacpp:requests_deferred", "absent"])
    assert values == {"llamacpp:requests_processing": 4.0, "llamacpp:requests_deferred": 3.0}


def test_llamacpp_busy_and_queued_from_metrics_and_slots():
    assert llamacpp_metrics_sample(5.0, "llama", METRICS, 4) == Sample(5.0, "llama", "", 4, 3, 4)
    assert llamacpp_metrics_sample(5.0, "llama", "# metrics off\n", 4) is None
    slots = [{"id": 0, "is_processing": True}, {"id": 1, "is_processing": False}, {"id": 2, "is_processing": True}]
    # /slots: two of three processing; it tells no queue depth
    assert llamacpp_slots_sample(5.0, "llama", slots) == Sample(5.0, "llama", "", 2, None, 3)
    assert llamacpp_slots_sample(5.0, "llama", {"error": "not supported"}) is None


def test_emulator_samples_one_per_model_in_use():
    samples = emulator_samples(5.0, "emu", STATE)
    assert samples == [
        Sample(5.0, "emu", "llama3.2:latest", 2, 3, 2),  # queued = waiting 3 + pending 0
        Sample(5.0, "emu", "qwen3:0.6b", 0, 1, None),  # loading: its slots are not known yet
    ]
    # the csv row of the host: busy 2 + 0, queued 3 + 1, total slots 2 (the loading model's unknown)
    assert host_row(samples) == [5.0, "emu", 2, 4, 2]
    assert host_row([Sample(5.0, "llama", "", 1, None, None)]) == [5.0, "llama", 1, "", ""]


@pytest.mark.parametrize(("info", "kind"), [
    ({"embedded": "emulator", "server": "ollama"}, "emulator"),
    ({"embedded": "llamacpp", "server": "llamacpp"}, "llamacpp"),
    ({"server": "llamacpp"}, "llamacpp"),
    ({"server": "ollama"}, "maybe-emulator"),  # an external emulator answers /_emulator/state, Ollama does not
    ({"server": "openai-compatible"}, None),
])
def test_hosts_are_sampled_by_the_kind_their_probe_found(info, kind):
    assert sampled_kind(info) == kind


@pytest.mark.integration
def test_sampler_polls_a_real_emulator_and_skips_a_host_that_does_not_answer(emulator_factory, tmp_path: Path):
    emu = emulator_factory(num_parallel=2, speed=20)
    body = json.dumps({"model": "llama3.2:latest", "prompt": "hi", "stream": False, "options": {"num_predict": 3}})
    urllib.request.urlopen(urllib.request.Request(f"{emu.url}/api/generate", body.encode()), timeout=10).read()
    hosts: list[HostInfo] = [
        {"name": "external-emu", "url": emu.url, "server": "ollama"},
        {"name": "gone", "url": f"http://127.0.0.1:{free_port()}", "server": "llamacpp", "total_slots": 4},
        {"name": "ollama-gone", "url": f"http://127.0.0.1:{free_port()}", "server": "ollama"},
    ]
    received: list[Sample] = []
    sampler = ServerSampler(hosts, tmp_path / "server_metrics.csv", received.extend, interval=0.1)
    sampler.start()
    poll(lambda: len(received) > 5, "six polls of the emulator", interval=0.1)  # the hosts gone never answer
    sampler.stop()
    with (tmp_path / "server_metrics.csv").open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == SERVER_METRICS_COLUMNS
    # one row per poll that was answered (the emulator's one model in use), none for the hosts that are gone
    assert len(rows) - 1 == len(received) > 5 and {r[1] for r in rows[1:]} == {"external-emu"}
    assert {(r[2], r[3], r[4]) for r in rows[1:]} == {("0", "0", "2")}  # idle, two slots configured
    assert {(s.host, s.model, s.total_slots) for s in received} == {("external-emu", "llama3.2:latest", 2)}
