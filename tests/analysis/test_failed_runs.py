"""A run in which no request succeeded (a model that is not there, a server that refuses) still analyses:
its failures are counted and every metric that needs a success is left empty, not a crash."""

from analysis.analyze import analyze
from analysis.saturation import saturation_curve
from tests.analysis.helpers import record, run_of


def every_request_failed() -> list[dict]:
    # Ten requests at concurrency 2, each answered 404 within 10 ms.
    return [record(t_start=i * 0.5, t_end=i * 0.5 + 0.01, status=404, error="http_4xx", user_id=i % 2)
            for i in range(10)]


def test_the_curve_of_a_run_without_a_success_has_its_errors_and_no_percentiles():
    stages = [{"stage": "c2", "users": 2, "t_begin": 0.0, "t_end": 5.0}]
    curve = saturation_curve(run_of(every_request_failed(), stages))
    assert curve.requests.sum() == 10 and curve.errors.sum() == 10
    assert curve[["ttft_p50_s", "ttft_p95_s", "e2e_p95_s", "slot_wait_p95_s"]].isna().all().all()


def test_a_run_without_a_success_is_analysed():
    analysis = analyze(run_of(every_request_failed()), {})
    assert analysis.run.records.error.eq("http_4xx").all()
