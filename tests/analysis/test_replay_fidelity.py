"""Replay fidelity: the lag of each replayed request behind its recorded time, computed by hand, and the
trace's requests left out, as the report and summary.json state them."""

from __future__ import annotations

import pytest

from analysis.analyze import analyze
from analysis.render_md import render_md
from analysis.replay import replay_fidelity
from analysis.report import build_report
from analysis.summary import summary
from tests.analysis.helpers import record, run_of

LOAD = {"shape": "replay", "file": "data/trace.csv", "format": "azure", "speed": 2.0,
        "summary": {"rows": 10, "bad": 1, "unsized": 0, "outside_window": 2, "over_cap": 1, "kept": 6, "sessions": 6,
                    "span_s": 9.0}}
LAGS = [0.001, 0.004, 0.002, 0.100, 0.003]  # t_start - t_scheduled of the five requests sent


def replayed() -> list[dict[str, object]]:
    return [record(session_id=f"0-line{i}", t_scheduled=10.0 + i, t_start=10.0 + i + lag, t_end=12.0 + i)
            for i, lag in enumerate(LAGS)]


def test_lag_percentiles_and_what_was_left_out():
    fidelity = replay_fidelity(run_of(replayed(), info={"load": LOAD}))
    assert fidelity is not None
    # Sorted lags 1, 2, 3, 4, 100 ms. p50: the middle one, 3 ms. p99: h = (5 - 1) * 0.99 = 3.96, so
    # 4 + 0.96 * (100 - 4) = 96.16 ms. Six were scheduled (10 rows - 2 outside the window - 1 over the cap
    # - 1 bad row), five sent.
    assert fidelity.lag_s["p50"] == pytest.approx(0.003)
    assert fidelity.lag_s["p99"] == pytest.approx(0.09616)
    assert fidelity.lag_s["max"] == pytest.approx(0.1) and fidelity.lag_s["n"] == 5
    assert (fidelity.scheduled, fidelity.sent) == (6, 5)
    assert fidelity.dropped == {"outside_window": 2, "over_cap": 1, "bad": 1, "unsized": 0}
    assert fidelity.line == ("replay of data/trace.csv at speed 2: 5 of 6 scheduled requests sent (1 not sent by the "
                             "end); lag t_start - t_scheduled p50 3.0 ms, p99 96.2 ms, max 100.0 ms. The trace has 10 "
                             "requests; left out when read: 2 outside the window, 1 over max_requests, 1 bad rows "
                             "skipped.")


def test_the_report_and_summary_state_it():
    a = analyze(run_of(replayed(), info={"load": LOAD}))
    markdown = render_md(build_report(a))
    assert "## Replay fidelity" in markdown and "5 of 6 scheduled requests sent" in markdown
    replay = summary(a)["replay"]
    assert (replay["scheduled"], replay["sent"], replay["not_sent"]) == (6, 5, 1)
    assert replay["dropped"]["over_cap"] == 1 and replay["lag_s"]["p50"] == pytest.approx(0.003)


def test_other_runs_have_none():
    assert replay_fidelity(run_of(replayed(), info={"load": {"shape": "arrivals"}})) is None
    assert summary(analyze(run_of(replayed())))["replay"] is None
