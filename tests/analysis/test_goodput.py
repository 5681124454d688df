import pytest

from analysis.slo import goodput, slos, verdicts
from tests.analysis.helpers import record, run_of, served


def test_goodput_counts_requests_within_every_slo_per_second_of_span():
    rows = [
        served(0.0, 0.0, 0.5, 1.0),  # ttft 0.5, e2e 1.5: good
        served(1.0, 1.0, 0.5, 1.0),  # ttft 1.5 > 1.0: not good
        served(2.0, 0.0, 0.2, 3.0),  # e2e 3.2 > 3.0: not good
        served(4.0, 0.0, 0.3, 1.0),  # good, ends at 5.3
        record(t_start=5.0, t_end=6.0, status=503, error="busy_503"),  # failed: not good; span ends at 6.0
    ]
    run = run_of(rows, info={"slo": {"ttft_p95_s": 1.0, "e2e_p95_s": 3.0}})
    slo_list, notes = slos(run.info)
    assert notes == []
    table = goodput(run, slo_list).iloc[0]
    # 2 good of 5; span = 6.0 - 0.0 -> 2 / 6 = 0.333 req/s
    assert table["good"] == 2
    assert table["good_share"] == pytest.approx(0.4)
    assert table["goodput_req_s"] == pytest.approx(2 / 6)


def test_verdicts_use_p95_and_error_rate_and_workload_overrides():
    rows = [served(float(i), 0.0, 0.1, 1.0 + i / 10, workload="chat") for i in range(11)]
    rows.append(record(t_start=20.0, t_end=21.0, workload="chat", status=503, error="busy_503"))
    info = {"slo": {"e2e_p95_s": 2.0, "error_rate": 0.05},
            "workloads": [{"name": "chat", "slo": {"e2e_p95_s": 2.1}}]}
    run = run_of(rows, info=info)
    table = verdicts(run, slos(run.info)[0]).set_index("slo")
    # e2e = 1.1 .. 2.1 (11 values, step 0.1); p95: h = 10 * 0.95 = 9.5 -> 2.0 + 0.5 * 0.1 = 2.05 <= 2.1 (override)
    assert table.loc["e2e_p95_s", "observed"] == pytest.approx(2.05)
    assert table.loc["e2e_p95_s", "threshold"] == 2.1
    assert bool(table.loc["e2e_p95_s", "passed"])
    # 1 failed of 12 = 0.0833 > 0.05
    assert table.loc["error_rate", "observed"] == pytest.approx(1 / 12)
    assert not bool(table.loc["error_rate", "passed"])


def test_cli_override_replaces_and_bad_keys_are_noted():
    slo_list, notes = slos({"slo": {"e2e_p95_s": 2.0, "latency": 3}}, {"e2e_p95_s": 9.0})
    assert [(s.key, s.threshold) for s in slo_list] == [("e2e_p95_s", 9.0)]
    assert len(notes) == 1 and "latency" in notes[0]
