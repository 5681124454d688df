"""The saturation curve and a target's slots, knee and serial flag for a run small enough to work out by hand:
every expected value below is computed in a comment from the requests' own times, not from a model. This
backs ``test_m1.py``, whose records come from a generator driven by the very speeds and slot counts its
assertions look for.

The run: one slot, two closed rounds. Every request prefills for 0.5 s and decodes 30 tokens in 1.5 s (20 tok/s),
so it holds the slot for 2.0 s; no network delay.
  c1 (stage 0-10 s):  A sent at 0, served 0-2.0
  c2 (stage 10-20 s): B and C sent at 10; B served 10-12.0; C waits 2.0 s, served 12.0-14.0
"""

import pytest

from analysis.analyze import analyze
from analysis.saturation import saturation_curve
from tests.analysis.helpers import round_stage, run_of, served

ROWS = [
    served(0.0, 0.0, 0.5, 1.5, tokens=30, user_id=0),  # A
    served(10.0, 0.0, 0.5, 1.5, tokens=30, user_id=0),  # B
    served(10.0, 2.0, 0.5, 1.5, tokens=30, user_id=1),  # C
]
STAGES = [round_stage(1, 0.0, 10.0), round_stage(2, 10.0, 20.0)]


def test_curve_by_hand():
    c = saturation_curve(run_of(ROWS, STAGES)).set_index("x")
    # wall = last end - first send: c1 2.0 - 0 = 2.0; c2 14.0 - 10 = 4.0
    assert c["wall_s"].tolist() == pytest.approx([2.0, 4.0])
    # tokens / wall: 30 / 2.0 = 15; 60 / 4.0 = 15. Successful requests / wall: 1 / 2.0 = 0.5; 2 / 4.0 = 0.5
    assert c["agg_tok_s"].tolist() == pytest.approx([15.0, 15.0])
    assert c["req_s"].tolist() == pytest.approx([0.5, 0.5])
    # per request: 30 tokens / 1.5 s decoding = 20 tok/s, at both levels
    assert c["per_req_tok_s"].tolist() == pytest.approx([20.0, 20.0])
    # N = sum(e2e) / wall: c1 2.0 / 2.0 = 1; c2 (2.0 + 4.0) / 4.0 = 1.5
    # L = sum(service) / wall: c1 2.0 / 2.0 = 1; c2 (2.0 + 2.0) / 4.0 = 1.0
    # Q = sum(slot wait) / wall: c1 0; c2 (0 + 2.0) / 4.0 = 0.5
    assert c["in_flight"].tolist() == pytest.approx([1.0, 1.5])
    assert c["in_service"].tolist() == pytest.approx([1.0, 1.0])
    assert c["waiting"].tolist() == pytest.approx([0.0, 0.5])
    # c2's e2e are 2.0 and 4.0: median 3.0; its slot waits 0 and 2.0: median 1.0
    assert c.loc[2, "e2e_p50_s"] == pytest.approx(3.0)
    assert c.loc[2, "slot_wait_p50_s"] == pytest.approx(1.0)


def test_target_by_hand():
    t = analyze(run_of(ROWS, STAGES)).saturation.targets.iloc[0]
    # overlap: the server's busy intervals [0, 2], [10, 12], [12, 14] only touch, so it never served 2 at once,
    # while the clients had 2 in flight for 2.0 s (10-12), as long as the median service time, so m = 2 is
    # judged and missed: 1, not a lower bound
    assert t["overlap"] == "1"
    # fit: rho = L / N at c1 = 1; rho*N = 1, 1.5. k = 1: L errors 0, 0; Q errors 0, 0.5 - 0.5 = 0: total 0.
    # k = 2: L errors 0, (1.0 - 1.5)^2 = 0.25; Q errors 0, (0.5 - 0)^2 = 0.25: total 0.5. So 1; 1.5 >= 1 + 0.5
    assert t["fit"] == "1"
    assert t["slots"] == 1 and not t["slots_lower_bound"]
    # knee: 0.9 x peak 15 = 13.5, which c1 already reaches
    assert t["knee"] == 1
    # serial: aggregate 15 -> 15 (<= 1.2 x 15); speed 20 -> 20 (>= 0.85 x 20); wall 2 -> 4 over users 1 -> 2: 1.0
    assert t["serial"] == True  # noqa: E712 - a numpy or Python bool
    # gain: peak / solo aggregate = 15 / 15
    assert t["gain"] == pytest.approx(1.0)
