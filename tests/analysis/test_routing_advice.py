"""Routing advice for hosts of unequal capacity, by hand: weights are each host's share of the summed
measured peak aggregate tok/s."""

import pandas as pd

from analysis.advice import _routing_advice


def targets(*rows: tuple[str, float, object]) -> pd.DataFrame:
    return pd.DataFrame([{"host": h, "model": "m", "peak_agg_tok_s": peak, "slots_lower_bound": lower}
                         for h, peak, lower in rows])


def test_weights_follow_measured_capacity():
    # 300 / (300 + 100) = 75 %, 100 / 400 = 25 %
    (advice,) = _routing_advice(targets(("fast", 300.0, False), ("slow", 100.0, False)))
    assert advice.topic == "routing" and advice.model == "m"
    assert "route by weights fast 75 %, slow 25 %" in advice.text
    assert "lower bound" not in advice.text


def test_hosts_within_20_percent_get_no_advice():
    # 110 < 1.2 x 100
    assert _routing_advice(targets(("a", 110.0, False), ("b", 100.0, False))) == []


def test_a_host_never_saturated_makes_its_share_a_lower_bound():
    # big ran at most 4 requests at once on 4 slots: 29.7 tok/s is what it was given, not what it can do.
    # 29.7 / (29.7 + 21.0) = 58.6 % -> 59 %, 21.0 / 50.7 = 41.4 % -> 41 %
    (advice,) = _routing_advice(targets(("big", 29.7, True), ("small", 21.0, None)))
    assert "route by weights big 59 %, small 41 %" in advice.text
    assert "; big never had all its slots busy, so its measured peak and share are lower bounds" in advice.text
    assert "small never" not in advice.text
