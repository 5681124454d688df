"""The sweep fit (estimator 2 in ``analysis.slots``): k minimising the squared error of ``L = min(rho*N, k)`` and
``Q = max(0, rho*N - k)`` over the levels.

The first three tests hand the fit curves written from its own model (``L``, ``Q`` exactly ``min(rho*N, k)``,
``max(0, rho*N - k)`` for some k, or ``L = rho*N`` throughout): they compare the fitted k with the model the
curve was made from, so they show the fit inverts its model, not that the model describes a server. They are
backed by ``test_fit_on_a_fifo_server_the_model_only_approximates``: records of a two-slot FIFO server whose
requests slow down when they share it, N, L and Q worked out by hand from the requests' times, and the
squared error of every candidate k worked out by hand.
"""

import pandas as pd
import pytest

from analysis.curve import curve_table
from analysis.slots import Estimate, fit_estimate
from tests.analysis.helpers import run_of, sweep


def curve(in_flight, in_service, waiting):
    return pd.DataFrame({"x": range(1, len(in_flight) + 1), "in_flight": in_flight, "in_service": in_service,
                         "waiting": waiting})


def test_hockey_stick_of_two_slots():
    """The model's own curve for k = 2 (a fitted value against the model it was fitted from)."""
    # rho = 0.9 / 1.0 = 0.9 at the lowest level; offered rho*N = 0.9, 1.8, 3.6, 7.2
    # served L = 0.9, 1.8, 2.0, 2.0 and waiting Q = 0, 0, 1.6, 5.2 fit min(rho*N, 2) / max(0, rho*N - 2) exactly
    # k = 3 would predict L = 3 at the top two levels: error (1^2)*2 + (0.6^2 + 1^2) > 0
    c = curve([1.0, 2.0, 4.0, 8.0], [0.9, 1.8, 2.0, 2.0], [0.0, 0.0, 1.6, 5.2])
    assert fit_estimate(c) == Estimate(2)


def test_without_slot_wait_the_throughput_plateau_decides():
    """The model's own curve for k = 2, without Q (a fitted value against the model it was fitted from)."""
    c = curve([1.0, 2.0, 4.0, 8.0], [0.9, 1.8, 2.0, 2.0], [None] * 4)
    assert fit_estimate(c) == Estimate(2)


def test_unsaturated_levels_give_a_lower_bound():
    """The model's own curve below any ceiling (a fitted value against the model it was fitted from)."""
    # L grows with N at every level: nothing saturated, so only "at least 4" (the best fit at rho*N = 3.6)
    c = curve([1.0, 2.0, 4.0], [0.9, 1.8, 3.6], [0.0, 0.0, 0.0])
    estimate = fit_estimate(c)
    assert estimate.lower_bound
    assert estimate.value == 4


def test_fit_on_a_fifo_server_the_model_only_approximates():
    """Independent of the fit's model: closed rounds of 1-4 users on a 2-slot FIFO server (no network, no
    prefill), 100 tokens a request, decoding alone in 1.0 s and two together in 1.5 s each.

    Per round, by hand (wall = last end - first send; N = sum(e2e) / wall, L = sum(service) / wall, Q = sum(wait)
    / wall):
      c1: one request 0-1.0                   wall 1.0  N 1.0           L 1.0           Q 0
      c2: two together 0-1.5                  wall 1.5  N 3.0/1.5 = 2   L 2.0           Q 0
      c3: two 0-1.5, the third 1.5-2.5        wall 2.5  N 5.5/2.5 = 2.2 L 4.0/2.5 = 1.6 Q 1.5/2.5 = 0.6
      c4: two 0-1.5, two 1.5-3.0              wall 3.0  N 9.0/3.0 = 3   L 6.0/3.0 = 2   Q 3.0/3.0 = 1
    c3 is no point of the model (its third request runs alone, at full speed, while a slot stays free).
    rho = L / N at c1 = 1, so rho*N = 1, 2, 2.2, 3, and the squared errors over L and Q are:
      k = 1: L: 0 + 1 + 0.36 + 1 = 2.36;    Q (N - 1 = 0, 1, 1.2, 2): 0 + 1 + 0.36 + 1 = 2.36;  total 4.72
      k = 2: L: 0 + 0 + 0.16 + 0 = 0.16;    Q (0, 0, 0.2, 1):         0 + 0 + 0.16 + 0 = 0.16;  total 0.32
      k = 3: L: 0 + 0 + 0.36 + 1 = 1.36;    Q (all 0):                0 + 0 + 0.36 + 1 = 1.36;  total 2.72
      k = 4: as k = 3 (no rho*N above 3);                                                      total 2.72
    k = 2, and no lower bound: rho*N reached 3 >= 2 + 0.5.
    """
    rows, stages = sweep((1, 2, 3, 4), slots=2, speeds={1: 100 / 1.0, 2: 100 / 1.5})
    c = curve_table(run_of(rows, stages).records)
    assert c["x"].tolist() == [1, 2, 3, 4]
    assert c["wall_s"].tolist() == pytest.approx([1.0, 1.5, 2.5, 3.0])
    assert c["in_flight"].tolist() == pytest.approx([1.0, 2.0, 2.2, 3.0])
    assert c["in_service"].tolist() == pytest.approx([1.0, 2.0, 1.6, 2.0])
    assert c["waiting"].tolist() == pytest.approx([0.0, 0.0, 0.6, 1.0])
    assert fit_estimate(c) == Estimate(2)


def test_estimates_agree():
    assert Estimate(4).agrees(Estimate(4))
    assert not Estimate(4).agrees(Estimate(1))
    assert Estimate(2, lower_bound=True).agrees(Estimate(4))
    assert not Estimate(5, lower_bound=True).agrees(Estimate(4))
    assert Estimate(None).agrees(Estimate(3))
