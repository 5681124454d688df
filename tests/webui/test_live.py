"""The live LLM table and chart (``loadgen.run.live``), fed hand-made record rows; expected values by hand."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.schema import RequestRecord
from analysis.slots import Estimate
from loadgen.run.live import (
    LiveStats,
    Timeline,
    more_informative,
    percentile,
    rate,
    seconds,
    slots_text,
)
from loadgen.run.sampler import Sample

T0 = 1_800_000_000.0  # the run started here


def row(t_start: float, t_end: float, *, workload: str = "chat", host: str = "emu", model: str = "m",
        ttft: float | None = 0.1, output: int | None = 10, prompt_eval: float | None = 0.1,
        eval_s: float | None = 0.5, total: float | None = None, load: float | None = 0.0,
        error: str = "", status: int = 200) -> list[Any]:
    """One record as a node ships it (``RequestRecord.to_row``: missing values are empty cells)."""
    return RequestRecord(
        run_id="r", worker=0, user_id=1, session_id="0-1-1", step=0, workload=workload, kind="chat",
        host=host, api="ollama", endpoint="/api/chat", model=model, stream=True, t_scheduled=None,
        t_start=t_start, t_first_token=t_start + ttft if ttft is not None else None, t_first_thinking=None,
        t_end=t_end, status=status, error=error, error_detail="", prompt_tokens=5, cached_tokens=None,
        output_tokens=output, thinking_tokens=None, tool_calls=None,
        server_total_s=total, server_load_s=load, server_prompt_eval_s=prompt_eval, server_eval_s=eval_s,
        num_predict=None, done_reason="stop",
    ).to_row()


def test_one_row_per_workload_host_and_model_with_its_counts():
    live = LiveStats(T0)
    now = T0 + 60
    live.add_rows([
        row(now - 5, now - 4, workload="chat"),
        row(now - 5, now - 4, workload="batch"),
        row(now - 5, now - 4, workload="chat", host="other"),
        row(now - 5, now - 4, workload="chat", error="timeout", status=0),
        row(now - 5, now - 4, workload="chat", error="timeout", status=0),
        row(now - 5, now - 4, workload="chat", error="http_5xx", status=500),
        row(now - 5, now - 4, workload="chat", error="busy_503", status=503),
    ])
    table = {(r["workload"], r["host"], r["model"]): r for r in live.table(now)}
    assert list(table) == [("batch", "emu", "m"), ("chat", "emu", "m"), ("chat", "other", "m")]
    chat = table[("chat", "emu", "m")]
    assert chat["requests"] == "5"  # 1 ok + 2 timeouts + 1 http_5xx + 1 503
    assert chat["failures"] == "3 (timeout 2, http_5xx 1)"  # 503s counted apart
    assert chat["busy_503"] == "1"
    assert all(isinstance(v, str) for r in table.values() for v in r.values())


def test_throughput_latency_and_slot_wait_of_the_last_window():
    live = LiveStats(T0)
    now = T0 + 100
    live.add_rows([
        # ttft 0.1, e2e 1.5, gen 50/1.0 = 50, slot wait 2.0 - 0 - 0.2 - 1.0 = 0.8
        row(now - 10, now - 8.5, ttft=0.1, output=50, prompt_eval=0.2, eval_s=1.0, total=2.0),
        # ttft 0.2, e2e 2.5, gen 100/2.0 = 50, slot wait 2.5 - 0 - 0.3 - 2.0 = 0.2
        row(now - 10, now - 7.5, ttft=0.2, output=100, prompt_eval=0.3, eval_s=2.0, total=2.5),
        # ttft 0.3, e2e 3.0, gen 150/2.5 = 60, slot wait 3.0 - 0 - 0.5 - 2.5 = 0.0
        row(now - 10, now - 7.0, ttft=0.3, output=150, prompt_eval=0.5, eval_s=2.5, total=3.0),
        # ended 40 s ago: outside the 30 s window, and older than the MIN_RECENT newest only if there were 20
        row(now - 41, now - 40, ttft=0.1, output=1000, prompt_eval=0.1, eval_s=0.5, total=0.6),
    ])
    (r,) = live.table(now)
    assert r["tok_s"] == "10.0"  # (50 + 100 + 150) / 30 s; the 1000 tokens ended before the window
    # fewer than MIN_RECENT requests in the window: the percentiles take the last 20 (all four)
    # gen: 50, 50, 60, 1000/0.5 = 2000 -> median (50 + 60) / 2 = 55
    assert r["gen_tok_s"] == "55.0"
    # ttft sorted 0.1, 0.1, 0.2, 0.3: p50 h = 3 * 0.5 = 1.5 -> 0.1 + 0.5 * 0.1 = 0.15
    assert r["ttft_p50"] == "150 ms"
    # p95 h = 3 * 0.95 = 2.85 -> 0.2 + 0.85 * 0.1 = 0.285
    assert r["ttft_p95"] == "285 ms"
    # e2e sorted 1.0, 1.5, 2.5, 3.0: h = 2.85 -> 2.5 + 0.85 * 0.5 = 2.925
    assert r["e2e_p95"] == "2.92 s"
    # slot wait sorted 0.0, 0.0 (0.6 - 0 - 0.1 - 0.5), 0.2, 0.8: h = 2.85 -> 0.2 + 0.85 * 0.6 = 0.71
    assert r["slot_wait_p95"] == "710 ms"


def test_percentiles_cover_the_window_once_it_holds_enough_requests():
    live = LiveStats(T0)
    now = T0 + 200
    live.add_rows([row(now - 100, now - 99, ttft=5.0)] * 5)  # long ago, slow
    live.add_rows([row(now - 3, now - 2, ttft=0.1)] * 20)  # 20 in the window: the old five drop out
    (r,) = live.table(now)
    assert r["ttft_p95"] == "100 ms"


def test_throughput_early_in_the_run_divides_by_the_time_since_it_started():
    live = LiveStats(T0)
    live.add_rows([row(T0 + 1, T0 + 2, output=30), row(T0 + 1, T0 + 9, output=30)])
    (r,) = live.table(T0 + 10)
    assert r["tok_s"] == "6.0"  # 60 tokens / 10 s (not / 30 s)


def test_missing_server_timers_leave_gen_speed_and_slot_wait_unknown():
    live = LiveStats(T0)
    live.add_rows([row(T0 + 1, T0 + 2, prompt_eval=None, eval_s=None, total=None, load=None)])
    (r,) = live.table(T0 + 10)
    assert (r["gen_tok_s"], r["slot_wait_p95"]) == ("-", "-")
    assert r["ttft_p50"] == "100 ms"


def waves(n: int) -> list[list[Any]]:
    """Four clients send at once every 2 s to a server with two slots: A and B are served in [T, T+1],
    C and D wait and are served in [T+1, T+2]. Service = prompt eval 0.1 + eval 0.9 = 1.0 s."""
    rows = []
    for k in range(n):
        t = T0 + 2 * k
        rows += [row(t, t + 1, ttft=0.1, prompt_eval=0.1, eval_s=0.9) for _ in range(2)]
        rows += [row(t, t + 2, ttft=1.1, prompt_eval=0.1, eval_s=0.9) for _ in range(2)]
    return rows


def test_slots_inferred_from_the_busy_intervals_and_busy_sequences_from_records():
    live = LiveStats(T0)
    live.add_rows(waves(10))  # 20 s of load
    now = T0 + 20
    (r,) = live.table(now)
    # clients have 4 in flight half the time, the server never more than 2: 2 slots, and not a lower
    # bound, since the clients offered more
    assert r["slots"] == "2"
    # no server samples: the time-averaged busy level of the last 30 s (the 20 s of the run): 2 always
    assert r["busy"] == "2.0 (avg 30 s)"


def test_busy_now_from_a_fresh_server_sample_of_the_model_or_the_host():
    live = LiveStats(T0)
    live.add_rows(waves(2))
    now = T0 + 20
    live.add_samples([Sample(now - 1, "emu", "m", 2, 3, 2)])
    assert live.table(now)[0]["busy"] == "2 / 2 (+3 queued)"
    live.add_samples([Sample(now - 1, "emu", "m", 1, 0, None)])
    assert live.table(now)[0]["busy"] == "1"
    # a sample older than STALE_S says nothing about now: back to the records (4 busy seconds / 20 s)
    # the two waves kept 2 slots busy for 4 s: 8 busy seconds / 30 s = 0.27
    assert live.table(now + 10)[0]["busy"] == "0.3 (avg 30 s)"


def test_host_wide_sample_applies_to_every_model_of_the_host():
    live = LiveStats(T0)
    live.add_rows([row(T0 + 1, T0 + 2)])
    live.add_samples([Sample(T0 + 9, "emu", "", 4, 1, 4)])
    assert live.table(T0 + 10)[0]["busy"] == "4 / 4 (+1 queued)"


def test_charts_draw_tok_s_and_busy_sequences_with_the_inferred_slots():
    live = LiveStats(T0)
    live.add_rows(waves(10))
    now = T0 + 20
    tok_s = live.tok_s_chart(now)
    busy = live.busy_chart(now)
    assert tok_s.startswith("<svg") and "emu m" in tok_s and "<polyline" in tok_s
    assert "emu m (records)" in busy and "emu m: 2 slots inferred" in busy
    live.add_samples([Sample(now, "emu", "m", 2, 2, 2)])
    assert "emu m (server)" in live.busy_chart(now) and "(records)" not in live.busy_chart(now)


def test_an_exact_estimate_is_kept_when_later_load_only_gives_a_lower_bound():
    exact4, at_least2, at_least6, exact2 = Estimate(4), Estimate(2, True), Estimate(6, True), Estimate(2)
    assert more_informative(exact4, at_least2) is exact4  # the ramp-down offered less: keep 4
    assert more_informative(exact4, at_least6) is at_least6  # more than 4 busy at once: 4 was wrong
    assert more_informative(exact4, exact2) is exact2
    assert more_informative(exact4, Estimate(None)) is exact4
    assert more_informative(None, at_least2) is at_least2
    assert [slots_text(e) for e in (exact4, at_least2, None)] == ["4", "≥ 2", "-"]


def test_timeline_sums_per_bucket_and_merges_pairs_at_capacity():
    line = Timeline(0.0, "sum", width=1.0, capacity=4)
    line.add(0.5, 1)
    line.add(1.5, 2)
    line.add(3.2, 3)
    assert line.points() == ([0.0, 1.0, 2.0, 3.0], [1, 2, 0.0, 3])
    line.add(4.1, 5)  # bucket 4 is past capacity: [1+2, 0+3] at width 2, then 4.1 falls in bucket 2
    assert line.points() == ([0.0, 2.0, 4.0], [3, 3, 5])


def test_timeline_max_keeps_the_peak_and_gaps():
    line = Timeline(0.0, "max", width=1.0, capacity=4)
    line.add(0.1, 2)
    line.add(0.9, 1)
    line.add(2.5, 3)
    assert line.points()[1] == [2, None, 3]
    line.add(4.0, 1)  # merge: [max(2, None), max(3, None)] then bucket 2
    assert line.points() == ([0.0, 2.0, 4.0], [2, 3, 1])


def test_timeline_spreads_an_interval_over_the_buckets_it_covers():
    line = Timeline(0.0, "sum")
    line.spread(0.5, 2.25)  # 0.5 s of bucket 0, all of bucket 1, 0.25 s of bucket 2
    assert line.points()[1] == pytest.approx([0.5, 1.0, 0.25])


def test_formatting_for_humans():
    assert [seconds(v) for v in (None, 0.0423, 1.234, 12.34, 123.4)] == ["-", "42 ms", "1.23 s", "12.3 s", "123 s"]
    assert [rate(v) for v in (None, 0.25, 12.34, 1234.5)] == ["-", "0.25", "12.3", "1234"]
    # percentile by linear interpolation: [1, 2, 3, 4, 5], p95 h = 4 * 0.95 = 3.8 -> 4 + 0.8 * 1 = 4.8
    assert percentile([1, 2, 3, 4, 5], 0.95) == pytest.approx(4.8)
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None
