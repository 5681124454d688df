"""DESIGN.md's M1 tables, synthesised as records, must come out as 1 and 4 slots.

The records come from ``m1.py``'s generator, a FIFO server driven by the tables' per-request speeds with 1 or
4 slots: the slot counts and speeds asserted here are the generator's inputs coming back, and the expected
wall times and aggregates are computed from the same parameters, so these tests compare the analysis with the
model its data was made from. They show the analysis and the generator agree, not that either describes a
server. ``test_curve.py`` backs them with a run whose every figure is worked out by hand from the requests'
own times.
"""

import pytest

from analysis.analyze import analyze
from analysis.compare import build_compare, compare_tables
from analysis.render_md import render_md
from tests.analysis.helpers import run_of
from tests.analysis.m1 import FOUR_SLOTS, ONE_SLOT, m1_rounds


def m1(slots, speeds, name):
    rows, stages = m1_rounds(slots, speeds)
    run = run_of(rows, stages)
    run.name = name
    return analyze(run)


@pytest.fixture(scope="module")
def one():
    return m1(1, ONE_SLOT, "one-slot")


@pytest.fixture(scope="module")
def four():
    return m1(4, FOUR_SLOTS, "four-slots")


def test_one_slot_server_is_serial(one):
    t = one.saturation.targets.iloc[0]
    assert t["slots"] == 1 and t["overlap"] == "1" and t["fit"] == "1"
    assert t["serial"] == True  # noqa: E712 - a numpy or Python bool
    assert t["knee"] == 1
    c = one.saturation.curve.set_index("x")
    # serial: wall grows with concurrency; round of 8 = 8 x (0.01 + 0.3 + 100/24.6) = 8 x 4.375 = 35.0 s
    assert c.loc[8, "wall_s"] == pytest.approx(35.0, rel=0.03)
    assert c.loc[8, "per_req_tok_s"] == pytest.approx(24.6, rel=0.03)


def test_four_slot_server(four):
    t = four.saturation.targets.iloc[0]
    assert t["slots"] == 4 and t["overlap"] == "4" and t["fit"] == "4"
    assert t["serial"] == False  # noqa: E712 - False, not None ("too few levels to tell")
    assert t["knee"] == 4  # c2 is no better than c1, yet the knee is 4
    c = four.saturation.curve.set_index("x")
    # c1: 100 / (0.01 + 0.3 + 100/21.7) = 100 / 4.918 = 20.3 tok/s; c4: 400 / (0.31 + 100/9.9) = 400 / 10.41 = 38.4
    assert c.loc[1, "agg_tok_s"] == pytest.approx(20.3, rel=0.03)
    assert c.loc[4, "agg_tok_s"] == pytest.approx(38.4, rel=0.03)
    assert 1.6 < t["gain"] < 2.0  # ~1.8x (1.89 with these parameters)


def test_compare_puts_them_side_by_side(one, four):
    targets, curves = compare_tables([one, four])
    assert targets.set_index("run")["slots"].to_dict() == {"one-slot": 1, "four-slots": 4}
    assert set(curves["run"]) == {"one-slot", "four-slots"}
    text = render_md(build_compare([one, four]))
    assert "four-slots is x1.6" in text  # peak aggregate 38.0 vs 23.0 tok/s
    assert "(serial)" in text
