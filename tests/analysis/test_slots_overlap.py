"""The busy-interval overlap estimator (estimator 1 in ``analysis.slots``).

The first three tests simulate a FIFO server with a given slot count (``closed_loop``) and look for that count in
the estimate: the answer is the simulation's own input. ``test_a_momentary_overlap_is_not_a_slot`` backs them with
two requests whose client and server overlap times are worked out by hand (and ``test_curve.py`` with a whole run).
"""

import random

from analysis.slots import Estimate, overlap_estimate, overlap_levels
from tests.analysis.helpers import run_of, served


def closed_loop(slots: int, users: int, requests: int, jitter: float, seed: int = 1):
    """``users`` clients each sending back to back to a ``slots``-slot server; every request 1 s of service,
    network delay 5 ms +- ``jitter`` on each request (so busy intervals are shifted by different amounts)."""
    rng = random.Random(seed)
    free = [0.0] * slots
    rows = []
    clock = [0.0] * users
    for _ in range(requests):
        user = min(range(users), key=clock.__getitem__)
        send = clock[user]
        net = 0.005 + rng.uniform(-jitter, jitter)
        slot = min(range(slots), key=free.__getitem__)
        start = max(send + net / 2, free[slot])
        free[slot] = start + 1.0
        row = served(send, start - send - net / 2, 0.1, 0.9, net=net, user_id=user)
        rows.append(row)
        clock[user] = row["t_end"]
    return rows


def test_four_slots_under_eight_users_with_jitter():
    records = run_of(closed_loop(slots=4, users=8, requests=400, jitter=0.004)).records
    levels = overlap_levels(records)
    # m = 5 only by jitter: a few ms per hand-over against ~100 s with >= 5 clients in flight
    assert levels.set_index("m").loc[5, "share"] < 0.05
    assert levels.set_index("m").loc[4, "share"] > 0.9
    assert overlap_estimate(levels) == Estimate(4)


def test_one_slot_is_found_even_with_many_users():
    records = run_of(closed_loop(slots=1, users=6, requests=100, jitter=0.004)).records
    assert overlap_estimate(overlap_levels(records)) == Estimate(1)


def test_lower_bound_when_load_never_exceeds_the_slots():
    # 2 users on a 4-slot server: the server was never offered 3 concurrent requests
    records = run_of(closed_loop(slots=4, users=2, requests=100, jitter=0.004)).records
    assert overlap_estimate(overlap_levels(records)) == Estimate(2, lower_bound=True)


def test_a_momentary_overlap_is_not_a_slot():
    # two requests on a 1-slot server whose busy intervals overlap by 10 ms out of 2 s in flight together
    rows = [served(0.0, 0.0, 0.1, 0.9), served(0.0, 0.99, 0.1, 0.9)]
    levels = overlap_levels(run_of(rows).records).set_index("m")
    # clients: both in flight for [0, 1.0] -> 1.0 s at >= 2; server: second busy from 0.99 -> 0.01 s at >= 2
    assert levels.loc[2, "client_s"] == 1.0
    assert abs(levels.loc[2, "server_s"] - 0.01) < 1e-9
    assert overlap_estimate(levels.reset_index()) == Estimate(1)
