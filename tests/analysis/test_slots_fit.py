import pandas as pd

from analysis.slots import Estimate, fit_estimate


def curve(in_flight, in_service, waiting):
    return pd.DataFrame({"x": range(1, len(in_flight) + 1), "in_flight": in_flight, "in_service": in_service,
                         "waiting": waiting})


def test_hockey_stick_of_two_slots():
    # rho = 0.9 / 1.0 = 0.9 at the lowest level; offered rho*N = 0.9, 1.8, 3.6, 7.2
    # served L = 0.9, 1.8, 2.0, 2.0 and waiting Q = 0, 0, 1.6, 5.2 fit min(rho*N, 2) / max(0, rho*N - 2) exactly
    # k = 3 would predict L = 3 at the top two levels: error (1^2)*2 + (0.6^2 + 1^2) > 0
    c = curve([1.0, 2.0, 4.0, 8.0], [0.9, 1.8, 2.0, 2.0], [0.0, 0.0, 1.6, 5.2])
    assert fit_estimate(c) == Estimate(2)


def test_without_slot_wait_the_throughput_plateau_decides():
    c = curve([1.0, 2.0, 4.0, 8.0], [0.9, 1.8, 2.0, 2.0], [None] * 4)
    assert fit_estimate(c) == Estimate(2)


def test_unsaturated_levels_give_a_lower_bound():
    # L grows with N at every level: nothing saturated, so only "at least 4" (the best fit at rho*N = 3.6)
    c = curve([1.0, 2.0, 4.0], [0.9, 1.8, 3.6], [0.0, 0.0, 0.0])
    estimate = fit_estimate(c)
    assert estimate.lower_bound
    assert estimate.value == 4


def test_estimates_agree():
    assert Estimate(4).agrees(Estimate(4))
    assert not Estimate(4).agrees(Estimate(1))
    assert Estimate(2, lower_bound=True).agrees(Estimate(4))
    assert not Estimate(5, lower_bound=True).agrees(Estimate(4))
    assert Estimate(None).agrees(Estimate(3))
