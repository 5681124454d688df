"""Cold starts and reloads by hand: ``load_s >= max(0.5 s, 10 x median load_s)`` of the host and model is cold;
a reload when a warm request of that host and model had completed before it started. And the advice on
reloads mid-run."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.coldstart import cold_starts
from tests.analysis.helpers import advice_on, record, run_of, served

TABLE_COLUMNS = ["host", "model", "workload", "t_s", "load_s", "kind", "done_reason"]
RELOAD = ("m@h1: {n} reloads mid-run (load time up to {load} s): check OLLAMA_KEEP_ALIVE, OLLAMA_MAX_LOADED_MODELS "
          "when the scenario mixes models, and per-request options (num_ctx, num_batch) that differ between clients")


def loaded(t_start: float, load: float, **fields: Any) -> dict[str, Any]:
    """A request sent at ``t_start`` that spends ``load`` s loading the model, then 1 s decoding."""
    return served(t_start, 0.0, 0.0, 1.0, load=load, **fields)


@pytest.mark.parametrize(
    "warm_load, probe_load, cold",
    [
        (0.1, 0.99, False),  # median 0.1: bar max(0.5, 10 x 0.1) = 1.0 s
        (0.1, 1.0, True),
        (0.01, 0.49, False),  # median 0.01: 10 x 0.01 = 0.1 s, so the 0.5 s floor is the bar
        (0.01, 0.5, True),
    ],
)
def test_cold_is_ten_times_the_median_load_but_at_least_half_a_second(warm_load: float, probe_load: float,
                                                                    cold: bool):
    # five warm requests at t = 0, 2, .., 8, then the probe at t = 20: the median of the six loads is the warm one
    rows = [loaded(2.0 * i, warm_load) for i in range(5)] + [loaded(20.0, probe_load)]
    run = run_of(rows)
    table = cold_starts(run)
    assert table[["t_s", "load_s", "kind"]].to_dict("records") == ([{"t_s": 20.0, "load_s": probe_load,
                                                                     "kind": "reload"}] if cold else [])
    assert advice_on(run, "reload") == ([RELOAD.format(n=1, load=f"{probe_load:.1f}")] if cold else [])


def test_a_reload_follows_a_completed_warm_request():
    rows = [
        loaded(0.0, 5.0),  # the first load, nothing warm before it: a cold start
        *(loaded(10.0 + 2.0 * i, 0.1) for i in range(9)),  # warm; the first ends at 10 + 0.1 + 1 = 11.1
        loaded(11.0, 3.0),  # sent 0.1 s before any warm request completed: still a cold start
        loaded(11.2, 3.0),  # sent 0.1 s after: the model had been loaded and was loaded again
        loaded(40.0, 4.0),  # a reload, the longest
    ]
    # loads: 9 x 0.1, 3.0, 3.0, 4.0, 5.0 -> median 0.1, bar 1.0 s: the four long loads are cold
    run = run_of(rows)
    assert cold_starts(run)[["t_s", "kind"]].values.tolist() == [
        [0.0, "cold start"], [11.0, "cold start"], [11.2, "reload"], [40.0, "reload"]
    ]
    # two reloads, the longest 4.0 s
    assert advice_on(run, "reload") == [RELOAD.format(n=2, load="4.0")]


def test_the_median_is_each_host_and_models_own():
    # m loads in 0.1 s, big in 2.0 s. Over the whole run the median is 0.1 (five of the eight loads), which would
    # make every load of big cold; but big's own median is 2.0 s, a bar of 20 s that none of its loads reaches.
    rows = [loaded(float(i), 0.1) for i in range(5)] + [loaded(10.0 + i, 2.0, model="big") for i in range(3)]
    assert cold_starts(run_of(rows)).empty


@pytest.mark.parametrize(
    "rows",
    [
        [record(t_start=float(i), t_end=i + 1.0) for i in range(3)],  # no load times (OpenAI API, llama.cpp)
        [loaded(float(i), 0.1) for i in range(3)],  # load times, none of them cold
    ],
    ids=["no-load-times", "none-cold"],
)
def test_an_empty_table_has_the_table_columns(rows: list[dict[str, Any]]):
    table = cold_starts(run_of(rows))
    assert table.empty
    assert table.columns.tolist() == TABLE_COLUMNS
