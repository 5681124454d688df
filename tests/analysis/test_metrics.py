import math

import pytest

from tests.analysis.helpers import record, run_of, served


def derived(**fields):
    return run_of([record(**fields)]).records.iloc[0]


def test_ttft_and_e2e():
    r = derived(t_start=10.0, t_first_token=10.4, t_end=12.0)
    assert r["ttft_s"] == pytest.approx(0.4)  # 10.4 - 10.0
    assert r["e2e_s"] == pytest.approx(2.0)  # 12.0 - 10.0


def test_no_first_token_means_no_ttft_and_no_tpot():
    r = derived(t_start=0.0, t_first_token=None, t_end=3.0, output_tokens=20)
    assert math.isnan(r["ttft_s"])
    assert math.isnan(r["tpot_s"])


def test_tpot_excludes_the_first_token():
    r = derived(t_start=0.0, t_first_token=0.5, t_end=2.5, output_tokens=11)
    # (2.5 - 0.5) / (11 - 1) = 0.2
    assert r["tpot_s"] == pytest.approx(0.2)


def test_tpot_missing_with_one_output_token():
    r = derived(t_start=0.0, t_first_token=0.5, t_end=0.6, output_tokens=1)
    assert math.isnan(r["tpot_s"])


def test_slot_wait_speed_and_busy_interval_from_server_timers():
    r = derived(t_start=100.0, t_first_token=103.5, t_end=105.0, output_tokens=30, server_total_s=4.9,
                server_load_s=0.1, server_prompt_eval_s=0.3, server_eval_s=1.5)
    # slot wait = 4.9 - 0.1 - 0.3 - 1.5 = 3.0
    assert r["slot_wait_s"] == pytest.approx(3.0)
    # speed = 30 / 1.5 = 20 tok/s
    assert r["gen_tok_s"] == pytest.approx(20.0)
    # busy interval = [105 - 1.5 - 0.3, 105] = [103.2, 105]
    assert r["busy_start"] == pytest.approx(103.2)
    assert r["service_s"] == pytest.approx(1.8)
    # overhead = e2e - total = 5.0 - 4.9 = 0.1
    assert r["overhead_s"] == pytest.approx(0.1)
    assert r["timing"] == "server"


def test_client_side_fallback_without_server_timers():
    r = derived(api="openai", t_start=0.0, t_first_token=1.0, t_end=3.0, output_tokens=21)
    # no server timers: service = t_end - t_first_token = 2.0, speed = (21 - 1) / 2.0 = 10 tok/s
    assert r["timing"] == "client"
    assert r["service_s"] == pytest.approx(2.0)
    assert r["gen_tok_s"] == pytest.approx(10.0)
    assert r["busy_start"] == pytest.approx(1.0)
    assert math.isnan(r["slot_wait_s"])


def test_errors_and_503():
    run = run_of([served(0, 0, 0.1, 1), record(status=503, error="busy_503"), record(status=500, error="http_5xx")])
    r = run.records
    assert r["ok"].tolist() == [True, False, False]
    assert r["is_503"].tolist() == [False, True, False]
