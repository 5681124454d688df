"""``fit``: the emulator twin of a measured server, each parameter checked against hand arithmetic.

Two runs of host h1, model m: ``one`` with 1 slot, ``four`` with 4 slots. Every request below is built from
its decode time and end (``req``), so the decode intervals, and the batches they make, are exact.

Run ``one`` (1 slot), requests 10 s apart, each decoding alone at 50 tok/s:

    tokens 60 80 120 140 160, all done_reason stop; decode = tokens / 50 = 1.2 1.6 2.4 2.8 3.2 s
    prompts 200/0.4 s  300/0.6 s  400/1.0 s  120/0.2 s  250/0.5 s  ->  500 500 400 600 500 tok/s
    load_duration 1.5 s on the first request (a real load), 2 ms (the scheduler) on the others

Run ``four`` (4 slots), r(1) = 40 tok/s, 100 tokens a request:

    batch 1: two requests alone, decode 2.5 s (40 tok/s); one stops (100 tokens), one hits num_predict
             prompts 200/0.4 s (500), 180/0.4 s (450); loads 2.5 s (real) and 2 ms
    batch 2: two requests decoding over the same 2.5*sqrt(2) = 3.5355 s: 28.284 tok/s, f(2) = 40/28.284 = sqrt(2)
             prompts 300/0.5 s (600) and an unreported cache hit: 2000 tokens in 0.1 s (20000 tok/s);
             one load of 0.4 s (below the 0.5 s floor: not a load)
    batch 4: four requests decoding over the same 5 s: 20 tok/s, f(4) = 40/20 = 2
             prompts 100/0.25 s (400), 400/0.8 s (500), 500/1.0 s (500) and a reported hit: cached_tokens 900

Hand results:

    solo_tps = 50 (the 1-slot run's median speed at batch 1)
    parallel_penalty = (50/40 - 1)/(4 - 1) = 0.25/3 = 0.083333
    contention: least squares of f - 1 = c*(b - 1) through (1, sqrt(2) - 1) and (3, 1):
        c = (1*0.414214 + 3*1)/(1 + 9) = 0.341421
        residual: f(2) 1.341421 - 1.414214 = -0.072792, f(4) 2.024264 - 2 = 0.024264,
        rms = sqrt((0.0052987 + 0.0005887)/2) = 0.054256
    power law b**alpha: 2**0.5 = sqrt(2), 4**0.5 = 2: alpha = 0.5, rms 0 -> chosen (linear's 0.054 > 0.02 noise,
        and 0 <= 0.5 x 0.054); table 2: 1.414 measured, 3: (1.414 + 2)/2 = 1.707 interpolated, 4: 2 measured,
        5..64: sqrt(b) extrapolated (9: 3, 64: 8)
    prefill_tps: only prompts evaluated alone (service = prefill + decode, before t_end). The 1-slot run's and
        run four's batch-1 requests are alone. Of the pair, the 300-token prompt [35.96, 36.46] meets the hit's
        service (from 36.36) for 0.1 of its 0.5 s: 0.2 others on average, alone; the hit's prompt lies inside the
        other's service: 1, not alone. Batch 4: every prompt overlaps the others' (e.g. [54, 55] meets 0.8 + 0.25
        + 0.2 s of them: 1.25), not alone; the reported hit is out anyway. The 8 rates left sorted
        400 450 500 500 500 500 600 600: median 500, p25 at position 1.75: 450 + 0.75*50 = 487.5, p75 at 5.25:
        500 + 0.25*100 = 525
    load_s = median(1.5, 2.5) - 0.1 (m1's fit_s, which the emulator's load_duration holds) = 1.9 s over 2 requests
    stopped lengths 60 80 100 120 140 160: p5 at position 0.25: 60 + 0.25*20 = 65; p95 at 4.75: 140 + 0.75*20 = 155
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from analysis.cli import main as analysis_main
from analysis.load import load_run
from analysis.twin import fit_twin
from analysis.twin.decode import decode_requests, mean_cover, mean_overlap
from analysis.twin.forms import choose_form, fit_forms
from analysis.twin.params import prefill_tps
from emulator.preset_file import load_preset_file
from loadgen.cli import main as loadtest_main
from tests.analysis.helpers import record, records_frame, write_run_dir

SQRT2 = math.sqrt(2)


def req(t_end: float, decode: float, tokens: int = 100, prompt: int = 200, prefill: float = 0.4,
        load: float = 0.002, done: str = "length", **fields: Any) -> dict[str, Any]:
    """A successful Ollama request that decoded ``tokens`` over ``[t_end - decode, t_end]``."""
    return record(t_start=t_end - decode - prefill - load, t_first_token=t_end - decode, t_end=t_end,
                  output_tokens=tokens, prompt_tokens=prompt, server_total_s=load + prefill + decode,
                  server_load_s=load, server_prompt_eval_s=prefill, server_eval_s=decode, done_reason=done,
                  num_predict=100, **fields)


def info(slots: int, host: str = "h1") -> dict[str, Any]:
    return {"run_id": f"slots-{slots}", "hosts": [{"name": host, "url": f"http://{host}:11434", "server": "ollama",
                                                   "version": "0.12.0", "embedded": "ollama",
                                                   "settings": {"num_parallel": slots}}]}


def one_slot_rows(host: str = "h1") -> list[dict[str, Any]]:
    lengths = [60, 80, 120, 140, 160]
    prompts = [(200, 0.4), (300, 0.6), (400, 1.0), (120, 0.2), (250, 0.5)]
    return [req(10.0 * (i + 1), n / 50, n, p, s, load=1.5 if i == 0 else 0.002, done="stop", host=host, user_id=i)
            for i, (n, (p, s)) in enumerate(zip(lengths, prompts, strict=True))]


def four_slot_rows() -> list[dict[str, Any]]:
    return [
        req(10.0, 2.5, prompt=200, prefill=0.4, load=2.5, done="stop"),
        req(20.0, 2.5, prompt=180, prefill=0.4),
        req(40.0, 2.5 * SQRT2, prompt=300, prefill=0.5, load=0.4, user_id=2),
        req(40.0, 2.5 * SQRT2, prompt=2000, prefill=0.1, user_id=3),  # an unreported prompt-cache hit
        req(60.0, 5.0, prompt=100, prefill=0.25, user_id=4),
        req(60.0, 5.0, prompt=400, prefill=0.8, user_id=5),
        req(60.0, 5.0, prompt=500, prefill=1.0, user_id=6),
        req(60.0, 5.0, prompt=1000, prefill=0.2, cached_tokens=900, user_id=7),  # a reported hit
    ]


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, Path]:
    return (write_run_dir(tmp_path / "one", one_slot_rows(), info=info(1)),
            write_run_dir(tmp_path / "four", four_slot_rows(), info=info(4)))


def fitted(sweep: tuple[Path, Path]) -> Any:
    return fit_twin([load_run(path) for path in sweep])


def test_solo_speed_and_parallel_penalty(sweep):
    twin = fitted(sweep)
    solo, penalty = twin.parameter("solo_tps"), twin.parameter("parallel_penalty")
    assert solo.value == pytest.approx(50.0)
    assert (solo.runs, solo.requests) == (("one",), 5)
    assert penalty.value == pytest.approx(0.25 / 3)  # (50/40 - 1)/(4 - 1)
    assert penalty.residual == pytest.approx(0.0, abs=1e-9)
    assert (penalty.runs, penalty.requests) == (("one", "four"), 7)  # the batch-1 requests of both runs
    assert twin.decode_sources == {"server": 13}


def test_slowdown_contention_and_the_chosen_form(sweep):
    twin = fitted(sweep)
    assert [(p.b, p.requests) for p in twin.points] == [(2, 2), (4, 4)]
    assert [p.f for p in twin.points] == pytest.approx([SQRT2, 2.0])
    contention = twin.parameter("contention")
    assert contention.value == pytest.approx((SQRT2 - 1 + 3) / 10)  # 0.341421
    assert contention.residual == pytest.approx(0.054256, abs=1e-6)
    assert contention.requests == 8  # 2 at b=2, 4 at b=4, and the 2 baselines at b=1
    linear, power, shifted = twin.forms
    assert linear.rms == pytest.approx(0.054256, abs=1e-6)
    assert power.params["alpha"] == pytest.approx(0.5, abs=1e-6) and power.rms == pytest.approx(0.0, abs=1e-6)
    assert not shifted.judged  # two parameters, two points: an exact fit proves nothing
    assert twin.form.name == "power"
    table = {row.b: (row.f, row.kind) for row in twin.table}
    assert sorted(table) == list(range(2, 65))
    assert table[2] == (pytest.approx(SQRT2), "measured")
    assert table[3] == (pytest.approx((SQRT2 + 2) / 2), "interpolated")  # 1.707107
    assert table[4] == (pytest.approx(2.0), "measured")
    assert table[9] == (pytest.approx(3.0, abs=1e-6), "extrapolated")  # 9**0.5
    assert table[64] == (pytest.approx(8.0, abs=1e-5), "extrapolated")  # 64**0.5


def test_prefill_without_cache_hits(sweep):
    prefill = fitted(sweep).parameter("prefill_tps")
    assert prefill.value == pytest.approx(500.0)
    assert prefill.requests == 8  # 13 minus the reported hit and the 4 evaluated beside others
    assert (prefill.spread.low, prefill.spread.high) == pytest.approx((487.5, 525.0))
    assert "1 reported cache hits" in prefill.note and "4 evaluated beside other requests" in prefill.note
    assert "prompts evaluated alone" in prefill.method


def test_an_unreported_cache_hit_evaluated_alone_is_left_out(tmp_path):
    # one more prompt alone, 2000 tokens in 0.1 s: the 9 rates alone have median 500, and 20000 > 5 x 500
    one = write_run_dir(tmp_path / "one", one_slot_rows() + [req(60.0, 1.0, prompt=2000, prefill=0.1, user_id=5)],
                        info=info(1))
    four = write_run_dir(tmp_path / "four", four_slot_rows(), info=info(4))
    prefill = fit_twin([load_run(one), load_run(four)]).parameter("prefill_tps")
    assert prefill.value == pytest.approx(500.0) and prefill.requests == 8
    assert "1 evaluated > 5x the median" in prefill.note


def test_prefill_when_no_prompt_was_evaluated_alone():
    # the batch of 4 without its hit: prompts 100/0.25, 400/0.8 and 500/1.0 overlap each other; rates 400, 500, 500
    prefill = prefill_tps(records_frame(four_slot_rows()[4:7]).assign(run="four"))
    assert prefill.value == pytest.approx(500.0) and prefill.requests == 3
    assert "no prompt was evaluated alone" in prefill.note and "over requests" in prefill.method


def test_load_and_output_range(sweep):
    twin = fitted(sweep)
    load = twin.parameter("load_s")
    assert load.value == pytest.approx(1.9) and load.requests == 2  # median(1.5, 2.5) - 0.1; 0.4 s is no load
    assert twin.parameter("min_output").value == 65  # p5 of 60 80 100 120 140 160
    assert twin.parameter("max_output").value == 155  # p95
    assert twin.preset() == pytest.approx({"solo_tps": 50.0, "parallel_penalty": 0.25 / 3,
                                           "contention": (SQRT2 + 2) / 10, "prefill_tps": 500.0, "load_s": 1.9,
                                           "min_output": 65, "max_output": 155})


def test_cli_writes_the_preset_file_the_emulator_reads(sweep, tmp_path, capsys):
    out = tmp_path / "twins" / "h1.yaml"
    assert loadtest_main(["fit", *map(str, sweep), "--out", str(out)]) == 0
    console = capsys.readouterr().out
    assert "twin of m@h1 from 2 runs (slots 1, 4)" in console
    assert "power chosen" in console and str(out) in console and str(out.with_suffix(".md")) in console
    data = yaml.safe_load(out.read_text())
    assert data["format"] == "ollama-loadtest.twin/1" and data["base"] == "m1"
    assert data["preset"] == {"solo_tps": 50.0, "parallel_penalty": 0.08333, "contention": 0.3414,
                              "prefill_tps": 500.0, "load_s": 1.9, "min_output": 65, "max_output": 155}
    assert data["batch_slowdown"][3] == 1.707 and data["batch_slowdown"][64] == 8.0
    assert data["source"]["slots"] == [1, 4] and data["source"]["model"] == "m"
    assert data["fit"]["contention_form"]["chosen"] == "power"
    assert data["fit"]["batch_slowdown"]["interpolated"] == "3"
    assert data["fit"]["batch_slowdown"]["extrapolated"] == "5-64"
    base, preset = load_preset_file(str(out))
    assert base == "m1" and preset.solo_tps == 50.0 and preset.max_output == 155
    assert preset.jitter == 0.02  # not fitted: m1's
    report = out.with_suffix(".md").read_text()
    assert "| 3 | 1.707 |" in report and "interpolated" in report and "extrapolated (power)" in report
    assert "| linear | `1 + c*(b-1), c = 0.3414` | 0.0543 | yes |" in report


def test_undetermined_parameters_are_left_to_the_base(tmp_path, capsys):
    """One 4-slot run, streamed, no server timers (an OpenAI-compatible endpoint): the decode time falls back to
    the client clock, first token to end, and speed = (tokens - 1)/decode: 100/2 = 50 tok/s alone, 100/4 = 25 in
    a batch of 2 (f(2) = 2). With one slot count the penalty is undetermined and solo_tps is r(1) at 4 slots."""
    rows = [record(t_start=t - 2.2, t_first_token=t - 2.0, t_end=t, output_tokens=101, done_reason="length",
                   user_id=i) for i, t in enumerate((10.0, 20.0))]
    rows += [record(t_start=35.8, t_first_token=36.0, t_end=40.0, output_tokens=101, done_reason="length",
                    user_id=2 + i) for i in range(2)]
    run = write_run_dir(tmp_path / "four", rows, info=info(4))
    assert analysis_main(["fit", str(run), "--out", str(tmp_path / "twin.yaml")]) == 0
    data = yaml.safe_load((tmp_path / "twin.yaml").read_text())
    assert data["preset"] == {"solo_tps": 50.0, "contention": 1.0}
    assert data["batch_slowdown"] == {2: 2.0}
    assert set(data["fit"]["decode_time"]) == {"client"} and data["fit"]["decode_time"]["client"]["requests"] == 4
    assert "different slot counts" in data["fit"]["parallel_penalty"]["undetermined"]
    assert data["fit"]["load_s"] == {"undetermined": "the server reports no load time (llama.cpp has no load timer)",
                                     "base_value": 1.2}
    assert "every one hit num_predict" in data["fit"]["min_output"]["undetermined"]
    assert "not corrected" in data["fit"]["solo_tps"]["method"]
    assert "undetermined, base m1 fills: parallel_penalty" in capsys.readouterr().out


def test_decode_source_falls_back_to_the_client_clock():
    rows = records_frame([
        record(t_first_token=1.0, t_end=3.0, output_tokens=11, server_eval_s=1.8),  # server timer: 11/1.8
        record(t_first_token=1.0, t_end=3.0, output_tokens=11),  # streamed, no timer: (11 - 1)/(3 - 1) = 5
        record(t_first_thinking=0.5, t_first_token=2.0, t_end=3.0, output_tokens=11),  # thinking first: 10/2.5 = 4
        record(stream=0, t_first_token=None, t_end=3.0, output_tokens=11),  # neither: no decode time
    ])
    decoded = decode_requests(rows)
    assert list(decoded["decode_source"]) == ["server", "client", "client"]
    assert list(decoded["speed"]) == pytest.approx([11 / 1.8, 5.0, 4.0])
    assert list(decoded["decode_s"]) == pytest.approx([1.8, 2.0, 2.5])


def test_batch_is_the_time_weighted_overlap():
    # [0, 2] and [1, 3] overlap on [1, 2]: each spends 1 s alone and 1 s with the other, mean 1.5 -> b = 2
    # (halves round up); [10, 14] meets [13, 14] for its last second: (3*1 + 1*2)/4 = 1.25; [13, 14]: 2
    batch = mean_overlap(np.array([0.0, 1.0, 10.0, 13.0]), np.array([2.0, 3.0, 14.0, 14.0]))
    assert list(batch) == pytest.approx([1.5, 1.5, 1.25, 2.0])
    # the same four over [1.5, 2.5]: [0, 2] and [1, 3] open on [1.5, 2), [1, 3] alone on [2, 2.5]: (2*0.5 + 1*0.5)/1
    cover = mean_cover(np.array([0.0, 1.0, 10.0, 13.0]), np.array([2.0, 3.0, 14.0, 14.0]), np.array([1.5]),
                       np.array([2.5]))
    assert list(cover) == pytest.approx([1.5])


def test_a_batch_size_seen_in_one_request_is_left_out(tmp_path):
    """A burst's first request decodes a step alone, then waits while the others' prompts are evaluated. Here X
    decodes over [30, 34] and three others over [31, 34]: X's mean batch is (1*1 + 4*3)/4 = 3.25, so b = 3, theirs
    4. One request at b = 3 is no batch the engine held: left out, and said so. r(1) = 100/2.5 = 40 tok/s from the
    two requests alone; f(4) = 40 / (100/3) = 1.2 from the three others."""
    rows = [req(5.0, 2.5, user_id=0), req(20.0, 2.5, user_id=1), req(34.0, 4.0, user_id=2)]
    rows += [req(34.0, 3.0, user_id=3 + i) for i in range(3)]
    twin = fit_twin([load_run(write_run_dir(tmp_path / "burst", rows, info=info(4)))])
    assert [(p.b, p.requests) for p in twin.points] == [(4, 3)]
    assert twin.points[0].f == pytest.approx(1.2)
    assert [(row.b, row.kind) for row in twin.table] == [(2, "interpolated"), (3, "interpolated"), (4, "measured")]
    assert any(note.endswith("b = 3 in burst (1 request)") for note in twin.notes), twin.notes


def test_linear_slowdown_keeps_the_linear_form():
    # f = 1 + 0.5*(b - 1) exactly at b = 2, 3, 4: c = (1*0.5 + 2*1 + 3*1.5)/(1 + 4 + 9) = 7/14 = 0.5, rms 0
    fits = fit_forms([(2, 1.5), (3, 2.0), (4, 2.5)])
    assert fits[0].params["c"] == pytest.approx(0.5) and fits[0].rms == pytest.approx(0.0)
    form, why = choose_form(fits)
    assert form.name == "linear" and "within measurement noise" in why


def test_several_targets_need_host_and_model(sweep, tmp_path, capsys):
    one, four = sweep
    mixed = write_run_dir(tmp_path / "mixed", four_slot_rows() + [req(90.0, 1.0, host="h2")], info=info(4))
    assert analysis_main(["fit", str(one), str(mixed), "--out", str(tmp_path / "t.yaml")]) == 2
    assert capsys.readouterr().err.strip() == ("error: the runs measured several hosts/models (m@h1, m@h2): choose "
                                               "one with --host NAME --model NAME")
    assert analysis_main(["fit", str(one), str(mixed), "--host", "h1", "--out", str(tmp_path / "t.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["preset"]["solo_tps"] == 50.0


def refusal(capsys: pytest.CaptureFixture[str], *runs: Path, out: Path) -> str:
    """Run ``fit`` expecting exit 2; the one line it printed."""
    assert analysis_main(["fit", *map(str, runs), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and not out.exists()
    return lines[0]


def test_refuses_runs_of_different_hosts(tmp_path, capsys):
    a = write_run_dir(tmp_path / "a", one_slot_rows("h1"), info=info(1, "h1"))
    b = write_run_dir(tmp_path / "b", one_slot_rows("h2"), info=info(1, "h2"))
    assert refusal(capsys, a, b, out=tmp_path / "t.yaml") == (
        "error: cannot fit one twin to runs of different hosts/models: a: m@h1; b: m@h2")


def test_refuses_a_single_concurrency_level(sweep, tmp_path, capsys):
    assert refusal(capsys, sweep[0], out=tmp_path / "t.yaml") == (
        "error: cannot fit how speed falls with concurrency: the runs measured only batches of 1; run a sweep "
        "(load: {shape: rounds, levels: [1, 2, 4]})")


def test_refuses_batches_without_a_solo_baseline(tmp_path, capsys):
    rows = four_slot_rows()[2:4]  # only the pair that decoded together: f(2) has no r(1) to divide
    run = write_run_dir(tmp_path / "pairs", rows, info=info(4))
    assert refusal(capsys, run, out=tmp_path / "t.yaml").startswith(
        "error: cannot fit how speed falls with concurrency: no run measured batches of 1 beside larger ones")


def test_refuses_batch_sizes_each_seen_in_one_request(tmp_path, capsys):
    # [30, 34] meets [33, 34] for its last second: (3*1 + 1*2)/4 = 1.25, b = 1; [33, 34] alone at b = 2
    rows = [req(5.0, 2.5, user_id=0), req(34.0, 4.0, user_id=1), req(34.0, 1.0, user_id=2)]
    run = write_run_dir(tmp_path / "edge", rows, info=info(4))
    assert refusal(capsys, run, out=tmp_path / "t.yaml").startswith(
        "error: cannot fit how speed falls with concurrency: each batch size above 1 was seen in fewer than 2 "
        "requests of a run")


def test_refuses_runs_without_timers_or_streaming(tmp_path, capsys):
    rows = [record(t_start=float(i), t_end=i + 2.0, stream=0, user_id=i) for i in range(4)]
    run = write_run_dir(tmp_path / "plain", rows, info=info(4))
    assert refusal(capsys, run, out=tmp_path / "t.yaml").startswith(
        "error: decode time unknown: the server reported no eval timers and no request was streamed")


def test_refuses_runs_where_everything_failed(tmp_path, capsys):
    rows = [record(t_start=float(i), t_end=i + 0.1, status=500, error="http_5xx", output_tokens=None, user_id=i)
            for i in range(4)]
    run = write_run_dir(tmp_path / "failed", rows, info=info(4))
    assert refusal(capsys, run, out=tmp_path / "t.yaml") == "error: every request to m@h1 failed: nothing to fit"


def test_fit_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        loadtest_main(["fit", "--help"])
    assert exit_.value.code == 0
    assert "usage: ollama-loadtest fit" in capsys.readouterr().out
