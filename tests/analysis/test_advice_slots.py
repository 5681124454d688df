"""Slot advice by hand: the slot count with its sources, "at least k", "configured N, effective k" and the
serial server. Most runs are ``uniform_sweep`` (helpers.py works out why 2 slots come out as a plain 2).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tests.analysis.helpers import advice_on, run_of, served, uniform_sweep

FLAG = ("m@h1: configured {n}, effective 2: check whether the model is one Ollama forces to one slot (embedding "
        "models, mllama, qwen3vl, qwen3vlmoe, qwen35, qwen35moe, qwen3next, lfm2, nemotron_h...), whether "
        "OLLAMA_NUM_PARALLEL reached the server process (e.g. the systemd unit's environment), and memory")
SERIAL = ("m@h1: the server ran requests one at a time: aggregate tok/s stayed flat (x{gain}) while time grew with "
          "concurrency and per-request speed stayed at solo speed - requests were queued, not slowed. Only more slots "
          "(OLLAMA_NUM_PARALLEL > 1, memory permitting) or more hosts serve them concurrently")


def slot_advice(slots: int = 2, levels: tuple[int, ...] = (1, 2, 4), **run: Any) -> list[str]:
    """The slot advice of ``uniform_sweep(slots, levels)``; ``run`` as for ``run_of``."""
    return advice_on(run_of(*uniform_sweep(slots, levels), **run), "slots")


def server_metrics(busy: int, queued: int, total_slots: int | None = None) -> pd.DataFrame:
    """One poll of h1's own busy count, queue depth and slot total."""
    return pd.DataFrame({"t": [1.0], "host": ["h1"], "busy": [busy], "queued": [queued], "total_slots": [total_slots]})


def ollama_host(**settings: int) -> dict[str, Any]:
    """run.json naming h1 as an Ollama host with these embedded settings."""
    return {"hosts": [{"name": "h1", "server": "ollama", "settings": settings}]}


def test_slot_count_names_both_estimators():
    assert slot_advice() == ["m@h1: 2 effective parallel slots (busy-interval overlap 2, sweep fit 2)"]


def test_one_slot_is_singular():
    # 1 slot: c4 runs as 4 waves; the clients had >= 2 in flight for 1.25 s (c2) + 3.75 s (c4), the server was
    # never busy with 2. Fit: L = 1 at every level and Q = N - 1 (c2: 0.5, c4: 1.5), exactly k = 1.
    assert slot_advice(slots=1) == ["m@h1: 1 effective parallel slot (busy-interval overlap 1, sweep fit 1)"]


def test_at_least_k_when_the_load_never_offered_more():
    # c1 and c2 only: the highest level judged, 2, is also the highest reached -> overlap ">= 2"; the fit's
    # offered rho x N peaks at 2 < k + 0.5 -> ">= 2". With c4 on top (above) it is a plain 2.
    assert slot_advice(levels=(1, 2)) == [
        "m@h1: at least 2 effective parallel slots (busy-interval overlap >= 2, sweep fit >= 2); the load never "
        "offered more than 2 concurrent requests for long enough: raise the top concurrency to find the ceiling"
    ]


@pytest.mark.parametrize(
    "queued, shown",
    [(1, "2"), (0, ">= 2")],  # busy 2 with a queue is the ceiling; busy 2 and nobody waiting is only a floor
    ids=["queued", "not-queued"],
)
def test_server_metrics_are_a_third_source(queued: int, shown: str):
    assert slot_advice(server_metrics=server_metrics(busy=2, queued=queued)) == [
        f"m@h1: 2 effective parallel slots (busy-interval overlap 2, sweep fit 2, server metrics {shown})"
    ]


@pytest.mark.parametrize(
    "run, flagged",
    [
        ({"info": ollama_host(num_parallel=4)}, 4),
        ({"info": ollama_host(OLLAMA_NUM_PARALLEL=3)}, 3),  # one more than effective is enough to flag
        ({"info": ollama_host(num_parallel=2)}, None),  # configured = effective
        ({"server_metrics": server_metrics(busy=2, queued=1, total_slots=4)}, 4),  # the server's own total
    ],
    ids=["num_parallel", "env-var-name", "as-configured", "total_slots"],
)
def test_configured_above_effective_is_flagged(run: dict[str, Any], flagged: int | None):
    found = [text for text in slot_advice(**run) if "configured" in text]
    assert found == ([] if flagged is None else [FLAG.format(n=flagged)])


def test_a_lower_bound_is_not_flagged_against_the_configured_count():
    # ">= 2" of 4 configured: the load never offered a third request, so nothing says the other two are missing
    assert not any("configured" in text for text in slot_advice(levels=(1, 2), info=ollama_host(num_parallel=4)))


def two_rounds(gain: float, speed_ratio: float) -> list[str]:
    """The serial advice of a c1 round (one request, 100 tokens at 100 tok/s: 1 s, aggregate 100 tok/s) and a c2
    round whose two requests decode at ``speed_ratio`` x 100 tok/s and whose round takes 2 / ``gain`` s, so its
    aggregate is 200 tokens / (2 / gain) s = gain x 100 tok/s and its time ratio over the concurrency ratio is
    (2 / gain) / 2 = 1 / gain."""
    decode = 1 / speed_ratio
    wall = 2 / gain
    rows = [served(0.0, 0.0, 0.0, 1.0), served(10.0, 0.0, 0.0, decode), served(10.0, wall - decode, 0.0, decode)]
    stages = [{"stage": "c1/r1", "mode": "round", "users": 1, "t_begin": 0.0, "t_end": 10.0},
              {"stage": "c2/r1", "mode": "round", "users": 2, "t_begin": 10.0, "t_end": 20.0}]
    return advice_on(run_of(rows, stages), "serial")


@pytest.mark.parametrize(
    "gain, speed_ratio, serial",
    [
        (1.19, 1.0, True),  # aggregate x1.19 <= 1.2: flat; time ratio 1 / 1.19 = 0.84 in [0.75, 1.33]
        (1.21, 1.0, False),  # x1.21 > 1.2: the second slot did add throughput
        (1.0, 0.86, True),  # per-request speed 86 % >= 85 % of solo: queued, not slowed
        (1.0, 0.84, False),  # 84 % < 85 %: the requests were slowed, not just queued
        (1 / 1.32, 1.0, True),  # time ratio 1.32 <= 1.33: time grew in proportion to concurrency
        (1 / 1.34, 1.0, False),  # 1.34 > 1.33: the round took longer than queueing explains
    ],
    ids=["gain-1.19", "gain-1.21", "speed-86", "speed-84", "time-1.32", "time-1.34"],
)
def test_serial_server(gain: float, speed_ratio: float, serial: bool):
    # the text's gain is the peak aggregate over c1's: max(gain x 100, 100) / 100
    expected = [SERIAL.format(gain=f"{max(gain, 1.0):.2f}")] if serial else []
    assert two_rounds(gain, speed_ratio) == expected


def test_a_one_slot_sweep_is_serial():
    # each round of c on 1 slot takes c x 1.25 s for c x 100 tokens: aggregate 80 tok/s at every level -> x1.00
    assert advice_on(run_of(*uniform_sweep(slots=1)), "serial") == [SERIAL.format(gain="1.00")]
