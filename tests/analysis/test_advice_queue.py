"""Queue advice by hand: the queue limit q, the gateway that enforces k + q, and the 503 onset.

Every run is ``uniform_sweep``: 2 slots (k = 2) swept at concurrency 1, 2, 4, every request spending 0.5 s in
prefill and 0.75 s decoding: mean prefill 0.50 s, mean service S = 1.25 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.analysis.helpers import SPACING_S, advice_on, record, run_of, uniform_sweep

GATEWAY = ("m@h1: OLLAMA_MAX_QUEUE does not bound requests waiting for a loaded model's slots (they queue without "
           "limit; ollama/ollama#7758), so enforce {limit} per host in a gateway (nginx limit_conn, LiteLLM "
           "max_parallel_requests, a proxy semaphore)")


def queue_advice(topic: str, info: dict[str, Any], busy_503_at: tuple[int, ...] = ()) -> list[str]:
    """The advice on ``topic`` of ``uniform_sweep`` with run.json ``info``, plus a 503 0.1 s into the round at
    each concurrency in ``busy_503_at``."""
    levels = (1, 2, 4)
    rows, stages = uniform_sweep(levels=levels)
    for users in busy_503_at:
        t0 = levels.index(users) * SPACING_S  # the round's start
        rows.append(record(t_start=t0 + 0.1, t_end=t0 + 0.2, status=503, error="busy_503"))
    return advice_on(run_of(rows, stages, info=info), topic)


@pytest.mark.parametrize(
    "slo, limit",
    [
        # q = floor(2 x (3.5 - 0.5) / 1.25) = floor(4.8) = 4, at most 2 + 4 = 6
        ({"ttft_p95_s": 3.5}, "a queue limit of 4 waiting requests (2 x (TTFT SLO 3.5 s - prefill 0.50 s) / service "
                              "1.25 s) fails fast instead of queueing requests that would miss the SLO anyway: at "
                              "most 6 in flight"),
        # q = floor(2 x (4.5 - 1.25) / 1.25) = floor(5.2) = 5, at most 7 (TTFT's formula would give floor(6.4) = 6)
        ({"e2e_p95_s": 4.5}, "a queue limit of 5 waiting requests (2 x (e2e SLO 4.5 s - service 1.25 s) / service "
                             "1.25 s) fails fast instead of queueing requests that would miss the SLO anyway: at most "
                             "7 in flight"),
        # with both, the TTFT SLO decides: 4 as above
        ({"ttft_p95_s": 3.5, "e2e_p95_s": 4.5}, "a queue limit of 4 waiting requests (2 x (TTFT SLO 3.5 s - prefill "
                                                "0.50 s) / service 1.25 s) fails fast instead of queueing requests "
                                                "that would miss the SLO anyway: at most 6 in flight"),
        # 2 x (0.4 - 0.5) / 1.25 = -0.16: no queue at all, at most the 2 slots
        ({"ttft_p95_s": 0.4}, "a queue limit of 0 waiting requests (2 x (TTFT SLO 0.4 s - prefill 0.50 s) / service "
                              "1.25 s) fails fast instead of queueing requests that would miss the SLO anyway: at "
                              "most 2 in flight"),
        ({}, "no TTFT or e2e SLO given, so no queue limit is derived (python -m analysis report --slo ttft_p95_s=...)"),
    ],
    ids=["ttft", "e2e", "ttft-first", "negative", "no-slo"],
)
def test_queue_limit(slo: dict[str, float], limit: str):
    assert queue_advice("queue", {"slo": slo}) == [f"m@h1: {limit}"]


@pytest.mark.parametrize(
    "hosts, gateway",
    [
        ([{"name": "h1", "server": "ollama"}], "6 concurrent requests"),  # k + q = 2 + 4
        ([], "6 concurrent requests"),  # no run.json hosts: assumed Ollama
        ([{"name": "h1", "server": "llamacpp"}], None),  # llama.cpp has no OLLAMA_MAX_QUEUE
    ],
    ids=["ollama", "unknown", "llamacpp"],
)
def test_gateway_enforces_k_plus_q(hosts: list[dict[str, str]], gateway: str | None):
    found = queue_advice("max_queue", {"slo": {"ttft_p95_s": 3.5}, "hosts": hosts})
    assert found == ([GATEWAY.format(limit=gateway)] if gateway else [])


def test_gateway_without_an_slo_names_no_number():
    assert queue_advice("max_queue", {}) == [GATEWAY.format(limit="the slot count plus a small queue")]


@pytest.mark.parametrize(
    "busy_503_at, onset, waiting",
    [
        ((4,), 4, 2),  # the queue limit bit at about 4 - k = 2 waiting requests
        ((2, 4, 4), 2, 0),  # the lowest concurrency with any 503, however few: 2 - 2 = 0 waiting
    ],
)
def test_503_onset(busy_503_at: tuple[int, ...], onset: int, waiting: int):
    found = queue_advice("max_queue", {"hosts": [{"name": "h1", "server": "ollama"}]}, busy_503_at)
    assert [text for text in found if "503" in text] == [
        f"m@h1: 503 (server busy) responses began at concurrency {onset}: the server's queue limit bit at about "
        f"{waiting} waiting requests"
    ]


def test_no_503_no_onset():
    assert not any("503" in text for text in queue_advice("max_queue", {}))
