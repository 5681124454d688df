from tests.analysis.helpers import run_of, served

STAGES = [
    {"stage": "c1", "mode": "steady", "users": 1, "t_begin": 0.0, "t_end": 100.0, "warmup_s": 10.0},
    {"stage": "c4/r1", "mode": "round", "users": 4, "t_begin": 100.0, "t_end": 110.0},
    {"stage": "c4/r2", "mode": "round", "users": 4, "t_begin": 110.0, "t_end": 120.0},
    {"stage": "ramp", "mode": "ramp", "users": 8, "t_begin": 120.0, "t_end": 200.0},
]


def test_requests_placed_in_their_stage_with_warmup_flagged():
    # starts: 5 s (c1 warm-up: < 0 + 10), 50 s (c1), 109.8 s (c4/r1), 110 s (c4/r2), 99.7 s (c1)
    rows = [served(t, 0, 0.1, 1.0) for t in (5.0, 50.0, 109.8, 110.0, 99.7)]
    r = run_of(rows, STAGES).records
    assert r["stage"].astype(str).tolist() == ["c1", "c1", "c4/r1", "c4/r2", "c1"]
    assert r["level"].astype(str).tolist() == ["c1", "c1", "c4", "c4", "c1"]
    assert r["warmup"].tolist() == [True, False, False, False, False]


def test_start_just_before_a_stage_belongs_to_it_within_clock_tolerance():
    # 300.2 s is after every stage; -0.3 s is 0.3 s before c1 begins (tolerance 0.5 s)
    r = run_of([served(-0.3, 0, 0.1, 1.0), served(300.2, 0, 0.1, 1.0)], STAGES).records
    assert r["stage"].astype(object).tolist()[0] == "c1"
    assert r["stage"].isna().tolist()[1]


def test_without_stages_the_run_is_one_level():
    r = run_of([served(0, 0, 0.1, 1.0)]).records
    assert r["level"].tolist() == ["all"]
