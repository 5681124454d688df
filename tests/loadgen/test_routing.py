"""Routing policies, with a fake clock so that host back-off is exact."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadgen.wire.routing import RETRY_AFTER_S, Policy, Router, Target


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hosts(*weights: float) -> list[Target]:
    return [Target(f"h{i}", f"http://127.0.0.{i + 1}:11434", weight=w) for i, w in enumerate(weights)]


def route(router: Router, sessions: list[str], model: str = "m") -> list[str]:
    names = []
    for s in sessions:
        t = router.acquire(s, model)
        router.release(t)
        names.append(t.name)
    return names


def test_sticky_keeps_a_session_on_its_host_and_spreads_new_sessions_by_weight():
    router = Router(hosts(1, 3), Policy.STICKY)
    first = {s: route(router, [s])[0] for s in [f"s{i}" for i in range(8)]}
    # smooth weighted round-robin over weights 1:3 -> 2 of 8 sessions on h0, 6 on h1
    assert Counter(first.values()) == {"h0": 2, "h1": 6}
    again = route(router, list(first) * 3)
    assert again == [first[s] for s in list(first) * 3]


def test_round_robin_alternates_ignoring_weights():
    router = Router(hosts(1, 5), Policy.ROUND_ROBIN)
    assert route(router, ["same"] * 4) == ["h0", "h1", "h0", "h1"]


def test_weighted_random_follows_weights():
    router = Router(hosts(1, 3), Policy.WEIGHTED, rng=random.Random(1))
    counts = Counter(route(router, ["s"] * 4000))
    assert counts["h1"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_least_in_flight_prefers_the_host_with_fewer_requests_open():
    router = Router(hosts(1, 1), Policy.LEAST_IN_FLIGHT)
    a = router.acquire("x", "m")
    b = router.acquire("y", "m")
    assert {a.name, b.name} == {"h0", "h1"}
    router.release(a)  # a's host finished first: the next request goes there
    assert router.acquire("z", "m").name == a.name


def test_refusing_host_is_skipped_until_its_backoff_ends_and_sticky_sessions_move():
    clock = Clock()
    router = Router(hosts(1, 1), Policy.STICKY, clock=clock)
    t = router.acquire("s", "m")
    router.release(t, refused=True)
    other = router.acquire("s", "m")
    assert other.name != t.name  # the session moved off the down host
    router.release(other)
    clock.now += RETRY_AFTER_S + 0.01
    assert route(router, ["new1", "new2"]).count(t.name) == 1  # back in rotation


def test_backoff_doubles_while_a_host_keeps_refusing():
    clock = Clock()
    router = Router(hosts(1), clock=clock)
    t = router.acquire("s", "m")
    router.release(t, refused=True)
    assert t.down_until == clock.now + RETRY_AFTER_S
    t = router.acquire("s", "m")  # all hosts down: tried anyway, so the failure is recorded
    router.release(t, refused=True)
    assert t.down_until == clock.now + 2 * RETRY_AFTER_S


def test_models_restrict_hosts():
    a, b = hosts(1, 1)
    a.models = frozenset({"small"})
    router = Router([a, b], Policy.ROUND_ROBIN)
    assert set(route(router, ["s"] * 4, model="big")) == {"h1"}
    with pytest.raises(LookupError):
        Router([a], Policy.ROUND_ROBIN).acquire("s", "big")
