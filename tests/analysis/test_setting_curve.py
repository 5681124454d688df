"""The setting's curve and the recommended setting in the comparison of a sweep's runs, worked out by hand.

Every run is a directory with requests.csv, stages.csv and run.json (``swept`` and ``variant`` as a sweep writes
them) of closed rounds on a FIFO server (``helpers.fifo_round``): at a level of u users, u requests are sent
together and served in waves of up to k (the slots: the setting), every request of a wave of w prefilling for
``prefill`` s, then decoding 100 tokens at ``speeds[w]`` tok/s. With no prefill and levels 1 and 4 the figures are
plain: at level 1 one request, aggregate = speeds[1]; at level 4, 4 / k waves of 100 / speeds[k] s each, so
aggregate = 400 / (4 / k x 100 / speeds[k]) = k x speeds[k]. Per-request tok/s is the wave's speed.

The 5 % threshold of every rule is ``setting_advice.CLOSE``; capacities in users also tie within ``CLOSE_USERS``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from analysis.analyze import Analysis, analyze
from analysis.compare import build_compare, compare_summary, sweep
from analysis.load import load_run
from analysis.render_html import render_html
from analysis.render_md import render_md
from analysis.setting_advice import CLOSE, CLOSE_USERS
from tests.analysis.helpers import sweep as fifo_sweep
from tests.analysis.helpers import write_run_dir

Speeds = Mapping[int, float]


def run_dir(root: Path, swept: Mapping[str, Any], slots: int, speeds: Speeds, levels: Sequence[int] = (1, 4),
            prefill: float = 0.0, slo: Mapping[str, float] | None = None, capacity: float | None = None,
            unit: str = "users", hosts: Mapping[str, Speeds] | None = None, name: str = "") -> Path:
    """A run of the sweep at ``swept`` on a ``slots``-slot server (``hosts``: one such server per host name, each
    with its own speeds), named after its setting unless given a ``name``; ``capacity``: a capacity search's
    answer in capacity.json."""
    rows, stages = [], []
    for host, host_speeds in (hosts or {"h1": speeds}).items():
        host_rows, stages = fifo_sweep(levels, slots, host_speeds, prefill)
        rows += [{**row, "host": host} for row in host_rows]
    name = name or ".".join(f"{key}-{value}" for key, value in swept.items())
    info: dict[str, Any] = {"run_id": name, "variant": name, "swept": dict(swept)}
    if slo:
        info["slo"] = dict(slo)
    directory = write_run_dir(root / name, rows, stages, info)
    if capacity is not None:
        (directory / "capacity.json").write_text(json.dumps({
            "unit": unit, "value": capacity, "last_pass": capacity, "first_fail": None, "limiting": None,
            "outcome": "bound", "probes": []}))
    return directory


def analyses(directories: Sequence[Path]) -> list[Analysis]:
    return [analyze(load_run(str(d))) for d in directories]


def compared(directories: Sequence[Path]) -> dict[str, Any]:
    """compare.json as the CLI writes it (no NaN)."""
    result: dict[str, Any] = json.loads(json.dumps(compare_summary(analyses(directories)), allow_nan=False))
    return result


def line(directories: Sequence[Path]) -> str:
    recommendation = compared(directories)["recommendation"]
    assert isinstance(recommendation["line"], str)
    return recommendation["line"]


def test_the_threshold_is_five_percent_and_one_user():
    assert (CLOSE, CLOSE_USERS) == (0.05, 1.0)  # the arithmetic in the comments below uses these


# --- the table -----------------------------------------------------------------------------------------------
# num_parallel 1, 2 and 4 at levels 1, 2, 4 with a 0.5 s prefill; speeds 50 tok/s alone, 40 in a wave of 2 and 25 in
# a wave of 4, so a wave takes 0.5 + 100/50 = 2.5 s, 0.5 + 100/40 = 3.0 s or 0.5 + 100/25 = 4.5 s.
THREE = [(1, {1: 50}), (2, {1: 50, 2: 40}), (4, {1: 50, 2: 40, 4: 25})]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("three")
    made = {k: run_dir(root, {"num_parallel": k}, k, speeds, levels=(1, 2, 4), prefill=0.5) for k, speeds in THREE}
    return [made[4], made[1], made[2]]  # given out of order


def test_the_curve_of_a_three_setting_sweep(three):
    rows = compared(three)["setting_curve"]
    # ordered by the setting's value, not as given
    assert [row["setting"] for row in rows] == [{"num_parallel": 1}, {"num_parallel": 2}, {"num_parallel": 4}]
    assert [row["run"] for row in rows] == ["num_parallel-1", "num_parallel-2", "num_parallel-4"]
    one, two, four = rows
    # aggregate = 100 u / wall. 1 slot: waves of one, 2.5 s each: 100/2.5 = 200/5 = 400/10 = 40 at every level,
    # first reached at 1. 2 slots: 40 at 1; 200/3 = 66.7 at 2 (one wave); 400/6 = 66.7 at 4 (two): peak at 2.
    # 4 slots: 40, 66.7, then 400/4.5 = 88.9 at 4.
    assert [row["peak_agg_tok_s"] for row in rows] == pytest.approx([40, 200 / 3, 400 / 4.5])
    assert [row["peak_x"] for row in rows] == [1, 2, 4]
    # the median speed at the peak's level: 50 alone, 40 in waves of 2, 25 in a wave of 4; solo always 50
    assert [row["peak_per_req_tok_s"] for row in rows] == pytest.approx([50, 40, 25])
    assert [row["solo_tok_s"] for row in rows] == pytest.approx([50, 50, 50])
    # the top level is 4 users everywhere. p95 of four values a <= b <= c <= d: c + 0.85 (d - c).
    assert [row["top_x"] for row in rows] == [4, 4, 4]
    # 1 slot, waves 2.5 s apart: waits 0, 2.5, 5, 7.5 -> 5 + 0.85 x 2.5 = 7.125; TTFT = wait + 0.5 -> 7.625;
    # e2e = wait + 2.5 -> 9.625
    assert (one["top_slot_wait_p95_s"], one["top_ttft_p95_s"], one["top_e2e_p95_s"]) == pytest.approx(
        (7.125, 7.625, 9.625))
    # 2 slots, two waves of 3.0 s: waits 0, 0, 3, 3 -> 3; TTFT 0.5, 0.5, 3.5, 3.5 -> 3.5; e2e 3, 3, 6, 6 -> 6
    assert (two["top_slot_wait_p95_s"], two["top_ttft_p95_s"], two["top_e2e_p95_s"]) == pytest.approx((3, 3.5, 6))
    # 4 slots, one wave of 4.5 s: no wait, TTFT 0.5, e2e 4.5
    assert (four["top_slot_wait_p95_s"], four["top_ttft_p95_s"], four["top_e2e_p95_s"]) == pytest.approx(
        (0, 0.5, 4.5))
    # no SLOs, no capacity search
    assert {(row["slo_passed"], row["capacity"], row["capacity_unit"]) for row in rows} == {(None, None, None)}
    assert {(row["host"], row["model"]) for row in rows} == {("h1", "m")}


def test_the_recommendation_of_a_three_setting_sweep(three):
    data = compared(three)
    # best 88.9; 0.95 x 88.9 = 84.4, which 66.7 misses: 4, the largest swept. Gain 88.9 / 40 = 2.22
    expected = ("use num_parallel=4: peak 88.9 tok/s aggregate (x2.22 over num_parallel=1); it is the largest setting "
                "swept, so a larger one may add more; each request runs at 25 tok/s there against 50 alone")
    assert data["recommendation"] == {"setting": {"num_parallel": 4}, "line": expected, "rule": "throughput"}
    assert data["findings"][-1] == expected


def test_the_document_has_the_section_table_and_chart(three):
    doc = build_compare(analyses(three))
    md = render_md(doc)
    section = md[md.index("## The setting's curve"):]
    assert section.splitlines()[2].startswith("use num_parallel=4: peak 88.9 tok/s aggregate")
    assert ("| run | num_parallel | peak tok/s | peak at x | per-request tok/s there | solo tok/s | top x | TTFT p95 s "
            "| e2e p95 s | slot wait p95 s |") in section
    assert "| num_parallel-1 | 1 | 40 | 1 | 50 | 50 | 4 | 7.62 | 9.62 | 7.12 |" in section
    assert "| num_parallel-4 | 4 | 88.9 | 4 | 25 | 50 | 4 | 0.5 | 4.5 | 0 |" in section
    html = render_html(doc)
    assert "<h2>The setting&#x27;s curve</h2>" in html
    assert "<title>Peak tok/s against num_parallel</title>" in html


def test_the_console_prints_the_curve_and_the_recommendation(three, tmp_path, capsys):
    from loadgen.variants import print_comparison

    path = tmp_path / "compare.json"
    path.write_text(json.dumps(compared(three)))
    print_comparison(path)
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, text in enumerate(out) if text.startswith("setting "))
    assert out[start].split() == ["setting", "peak", "tok/s", "at", "x", "per-request", "solo", "top", "x", "e2e",
                                  "p95", "s"]
    assert out[start + 1].split() == ["num_parallel=1", "40.0", "1", "50.0", "50.0", "4", "9.62"]
    assert out[start + 3].split() == ["num_parallel=4", "88.9", "4", "25.0", "50.0", "4", "4.5"]
    assert out[start + 4].startswith("use num_parallel=4: peak 88.9 tok/s aggregate")


# --- throughput: the smallest setting within 5 % of the best peak ---------------------------------------------
@pytest.mark.parametrize("speeds, expected", [
    # peaks 50, 2 x 25.6 = 51.2 and 4 x 13 = 52; 0.95 x 52 = 49.4 <= 50: 1. 2 adds 51.2 / 50 = +2 %
    ({2: 25.6, 4: 13.0}, "use num_parallel=1: peak 50.0 tok/s aggregate (the smallest setting swept); 2 adds +2 % "
                         "for twice the KV-cache memory; each request runs at 50 tok/s there against 50 alone"),
    # peaks 50, 51.2 and 4 x 13.2 = 52.8; 0.95 x 52.8 = 50.16: 50 misses, 51.2 makes it. 51.2 / 50 = x1.02;
    # 4 adds 52.8 / 51.2 = +3 %
    ({2: 25.6, 4: 13.2}, "use num_parallel=2: peak 51.2 tok/s aggregate (x1.02 over num_parallel=1); 4 adds +3 % "
                         "for twice the KV-cache memory; each request runs at 26 tok/s there against 50 alone"),
    # peaks 50, 2 x 47.6 = 95.2 and 4 x 25 = 100; 95.2 >= 0.95 x 100 = 95: 2. x1.90 (95.2 / 50); 4 adds +5 %
    ({2: 47.6, 4: 25.0}, "use num_parallel=2: peak 95.2 tok/s aggregate (x1.90 over num_parallel=1); 4 adds +5 % "
                         "for twice the KV-cache memory; each request runs at 48 tok/s there against 50 alone"),
    # 2 x 47.4 = 94.8 < 95: 4
    ({2: 47.4, 4: 25.0}, "use num_parallel=4: peak 100.0 tok/s aggregate (x2.00 over num_parallel=1); it is the "
                         "largest setting swept, so a larger one may add more; each request runs at 25 tok/s there "
                         "against 50 alone"),
])
def test_throughput_picks_the_smallest_setting_within_5_percent(tmp_path, speeds, expected):
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, **({k: speeds[k]} if k > 1 else {})})
            for k in (1, 2, 4)]
    assert line(runs) == expected


# --- capacity: the highest, or a smaller setting within one user or 5 % of it -------------------------------
CAPACITY_LIST = "capacities {} (num_parallel=1), {} (num_parallel=2), {} (num_parallel=4), {} (num_parallel=8)"


@pytest.mark.parametrize("capacities, pick, why", [
    # best 13; tolerance max(0.05 x 13 = 0.65, 1) = 1 user: 13 - 12 = 1 ties, so 4
    ((5, 9, 12, 13), 4, "within 1 user or 5 % of the highest (13 at num_parallel=8 for twice the KV-cache memory)"),
    # 13 - 11 = 2 > 1: 8
    ((5, 9, 11, 13), 8, "the highest"),
    # best 42; tolerance max(0.05 x 42 = 2.1, 1) = 2.1: 42 - 40 = 2 ties, so 4
    ((20, 30, 40, 42), 4, "within 1 user or 5 % of the highest (42 at num_parallel=8 for twice the KV-cache memory)"),
    # best 43; tolerance 2.15: 43 - 40 = 3 > 2.15: 8
    ((20, 30, 40, 43), 8, "the highest"),
])
def test_capacity_picks_the_highest_or_a_smaller_setting_within_a_user_or_5_percent(tmp_path, capacities, pick, why):
    # every run searched (and had SLOs): capacity decides, whatever the peaks (here 50, 80, 100, 100)
    speeds = {1: 50.0, 2: 40.0, 4: 25.0, 8: 25.0}
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, speeds, slo={"e2e_p95_s": 1.0}, capacity=c)
            for k, c in zip((1, 2, 4, 8), capacities, strict=True)]
    chosen = dict(zip((1, 2, 4, 8), capacities, strict=True))[pick]
    assert compared(runs)["recommendation"] == {
        "setting": {"num_parallel": pick}, "rule": "capacity",
        "line": f"use num_parallel={pick}: capacity {chosen} users, {why}; " + CAPACITY_LIST.format(*capacities)}


@pytest.mark.parametrize("smaller, pick", [
    (9.6, 2),  # 10 - 9.6 = 0.4 <= 0.05 x 10 = 0.5: 2
    (9.4, 4),  # 10 - 9.4 = 0.6 > 0.5: 4 (in users, 0.6 would be within one user)
])
def test_a_capacity_in_req_per_s_ties_within_5_percent_only(tmp_path, smaller, pick):
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, 2: 40.0, 4: 25.0}, capacity=c, unit="req/s")
            for k, c in ((1, 2.0), (2, smaller), (4, 10.0))]
    recommendation = compared(runs)["recommendation"]
    assert (recommendation["rule"], recommendation["setting"]) == ("capacity", {"num_parallel": pick})
    assert recommendation["line"].startswith(f"use num_parallel={pick}: capacity {10.0 if pick == 4 else smaller:g} "
                                             "req/s, ")


def test_capacity_searched_in_some_runs_only_falls_back_to_throughput(tmp_path):
    # peaks 50, 80, 100: 80 < 95, so 4
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, 2: 40.0, 4: 25.0}, capacity=c)
            for k, c in ((1, 3), (2, None), (4, 9))]
    data = compared(runs)
    assert (data["recommendation"]["rule"], data["recommendation"]["setting"]) == ("throughput", {"num_parallel": 4})
    assert [row["capacity"] for row in data["setting_curve"]] == [3, None, 9]


# --- SLOs: among the runs that met them, the smallest within 5 % of their best peak --------------------------
# tpot = decode / 99 tokens = (100 / speed) / 99. The run-wide p95 over its five requests (one at level 1 at
# 50 tok/s, four at level 4 at the wave's speed) is the level-4 value whenever that is the larger.
# 1 slot: 2 / 99 = 0.0202; 2 slots at 26.3 / 26.4 tok/s: 3.80 / 99 = 0.0384, 3.79 / 99 = 0.0383;
# 4 slots at 20 tok/s: 5 / 99 = 0.0505.
@pytest.mark.parametrize("tpot, speed_2, expected", [
    # 4 misses 0.045; of 1 (peak 50) and 2 (2 x 26.3 = 52.6): 0.95 x 52.6 = 49.97 <= 50, so 1
    (0.045, 26.3, "use num_parallel=1: it met the SLOs with peak 50.0 tok/s aggregate, within 5 % of the best that "
                  "met them (52.6 at num_parallel=2); num_parallel=4 missed them"),
    # 2 x 26.4 = 52.8: 0.95 x 52.8 = 50.16 > 50, so 2
    (0.045, 26.4, "use num_parallel=2: it met the SLOs with peak 52.8 tok/s aggregate, the best of the settings "
                  "that met them; num_parallel=4 missed them"),
    # 0.0505 <= 0.051: 4 meets them too, and its 4 x 20 = 80 is the best
    (0.051, 26.4, "use num_parallel=4: it met the SLOs with peak 80.0 tok/s aggregate, the best of the settings "
                  "that met them"),
])
def test_slo_picks_the_smallest_setting_that_met_them_within_5_percent(tmp_path, tpot, speed_2, expected):
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, k: speed}, slo={"tpot_p95_s": tpot})
            for k, speed in ((1, 50.0), (2, speed_2), (4, 20.0))]
    data = compared(runs)
    assert data["recommendation"]["line"] == expected
    assert data["recommendation"]["rule"] == "slo"
    assert [row["slo_passed"] for row in data["setting_curve"]] == [True, True, tpot >= 0.0505]


def test_when_no_setting_met_the_slos_none_is_recommended_and_the_closest_named(tmp_path):
    # every tpot is above 0.01. p95 e2e at level 4: 1 slot 2, 4, 6, 8 s -> 6 + 0.85 x 2 = 7.7; 2 slots at 40 tok/s
    # 2.5, 2.5, 5, 5 -> 5 + 0 = 5; 4 slots at 25 tok/s 4, 4, 4, 4 -> 4: the closest
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, k: speed}, slo={"tpot_p95_s": 0.01})
            for k, speed in ((1, 50.0), (2, 40.0), (4, 25.0))]
    data = compared(runs)
    assert [row["top_e2e_p95_s"] for row in data["setting_curve"]] == pytest.approx([7.7, 5, 4])
    assert data["recommendation"] == {
        "setting": None, "rule": "none",
        "line": "no setting met the SLOs; num_parallel=4 came closest: p95 e2e 4 s at its top level (4)"}


# --- two settings, several targets ---------------------------------------------------------------------------
def test_a_two_setting_sweep(tmp_path):
    # context_length changes nothing in these runs but 2 slots' speed: peaks 50, 50, 2 x 40 = 80, 2 x 41.5 = 83.
    # 0.95 x 83 = 78.85 <= 80: num_parallel=2, context_length=2048; x1.60 (80 / 50); the next setting adds
    # 83 / 80 = +4 % for (2 / 2) x (4096 / 2048) = twice the KV-cache memory
    made = {(k, ctx): run_dir(tmp_path, {"num_parallel": k, "context_length": ctx}, k, {1: 50.0, 2: speed})
            for k, ctx, speed in ((2, 4096, 41.5), (1, 4096, 50.0), (2, 2048, 40.0), (1, 2048, 50.0))}
    data = compared(list(made.values()))
    assert [tuple(row["setting"].values()) for row in data["setting_curve"]] == [
        (1, 2048), (1, 4096), (2, 2048), (2, 4096)]
    assert [row["peak_agg_tok_s"] for row in data["setting_curve"]] == pytest.approx([50, 50, 80, 83])
    assert data["recommendation"] == {
        "setting": {"num_parallel": 2, "context_length": 2048}, "rule": "throughput",
        "line": "use num_parallel=2, context_length=2048: peak 80.0 tok/s aggregate (x1.60 over num_parallel=1, "
                "context_length=2048); num_parallel=2, context_length=4096 adds +4 % for twice the KV-cache memory; "
                "each request runs at 40 tok/s there against 50 alone"}
    svg = sweep(analyses(list(made.values()))).figure().svg  # one pair of lines per context_length
    assert "context_length=2048: aggregate" in svg and "context_length=4096: per request at the peak" in svg


def test_a_setting_that_is_not_a_number_keeps_the_order_given(tmp_path):
    # peaks: q8_0 2 x 40 = 80, f16 2 x 42 = 84, q4_0 2 x 30 = 60; 0.95 x 84 = 79.8 <= 80: q8_0, the first given
    runs = [run_dir(tmp_path, {"kv_cache_type": kind}, 2, {1: 50.0, 2: speed})
            for kind, speed in (("q8_0", 40.0), ("f16", 42.0), ("q4_0", 30.0))]
    data = compared(runs)
    assert [row["setting"]["kv_cache_type"] for row in data["setting_curve"]] == ["q8_0", "f16", "q4_0"]
    # no KV-cache size to compare (the type is not a number): no memory clause
    assert data["recommendation"]["line"] == (
        "use kv_cache_type=q8_0: peak 80.0 tok/s aggregate (the smallest setting swept); f16 adds +5 %; each request "
        "runs at 40 tok/s there against 50 alone")


def test_several_targets_give_a_row_each_and_are_judged_together(tmp_path):
    # h1 as before; h2 slower: 45 tok/s alone, 30 in a wave of 2. Peaks: 1 slot 50 + 45 = 95; 2 slots
    # 2 x 40 + 2 x 30 = 140; 0.95 x 140 = 133 > 95: 2, x1.47 (140 / 95). Its slowest target is h2: 30 at the
    # peak against 45 alone
    runs = [run_dir(tmp_path, {"num_parallel": k}, k, {}, hosts={"h1": {1: 50.0, 2: 40.0}, "h2": {1: 45.0, 2: 30.0}})
            for k in (1, 2)]
    data = compared(runs)
    assert [(row["run"], row["host"]) for row in data["setting_curve"]] == [
        ("num_parallel-1", "h1"), ("num_parallel-1", "h2"), ("num_parallel-2", "h1"), ("num_parallel-2", "h2")]
    assert [row["peak_agg_tok_s"] for row in data["setting_curve"]] == pytest.approx([50, 45, 80, 60])
    assert data["recommendation"]["line"] == (
        "use num_parallel=2: peak 140.0 tok/s aggregate (x1.47 over num_parallel=1); it is the largest setting swept, "
        "so a larger one may add more; each request runs at 30 tok/s there against 45 alone on its slowest target")
    assert "| num_parallel-2 | 2 | m@h2 | 60 |" in render_md(build_compare(analyses(runs)))


# --- not a sweep -------------------------------------------------------------------------------------------
def test_runs_that_are_not_a_sweep_have_no_section(tmp_path):
    plain = [run_dir(tmp_path, {}, 2, {1: 50.0, 2: 40.0}, name="two"), run_dir(tmp_path, {}, 1, {1: 50.0}, name="one")]
    data = compared(plain)
    assert (data["setting_curve"], data["recommendation"]) == (None, None)
    assert "The setting's curve" not in render_md(build_compare(analyses(plain)))


def test_one_swept_run_beside_a_baseline_is_no_sweep_and_two_are(tmp_path):
    baseline = run_dir(tmp_path, {}, 1, {1: 50.0}, name="baseline")
    one, two = (run_dir(tmp_path, {"num_parallel": k}, k, {1: 50.0, 2: 40.0}) for k in (1, 2))
    assert compared([baseline, one])["setting_curve"] is None
    assert [row["run"] for row in compared([baseline, one, two])["setting_curve"]] == [
        "num_parallel-1", "num_parallel-2"]


def test_runs_swept_on_different_settings_have_no_section(tmp_path):
    runs = [run_dir(tmp_path, {"num_parallel": 2}, 2, {1: 50.0, 2: 40.0}), run_dir(tmp_path, {"slots": 4}, 4,
                                                                                     {1: 50.0, 4: 25.0})]
    data = compared(runs)
    assert (data["setting_curve"], data["recommendation"]) == (None, None)
    assert "The setting's curve" not in render_md(build_compare(analyses(runs)))


def test_a_slot_count_the_load_never_filled_is_named(tmp_path):
    # num_parallel 1, 2 and 4 measured at levels 1 and 2 only: 4 slots never had more than 2 requests, so its
    # curve is the 2-slot one (speeds equal up to 2) and says nothing of 4. Aggregate: 1 slot 100/2 = 50 at both
    # levels; 2 and 4 slots 200/2.5 = 80 at 2. Best 80; 0.95 x 80 = 76: 2 is the smallest within it.
    made = [run_dir(tmp_path, {"num_parallel": k}, k, {1: 50, 2: 40}, levels=(1, 2)) for k in (1, 2, 4)]
    assert line(made).endswith("; the load never exceeded 2 requests at once, so num_parallel=4 never had every "
                               "slot busy: add load levels at least that high to judge them")
    filled = [run_dir(tmp_path / "filled", {"num_parallel": k}, k, {1: 50, 2: 40}, levels=(1, 2)) for k in (1, 2)]
    assert "never had every slot busy" not in line(filled)  # 2 requests fill 2 slots
