"""The capacity search on the real llama.cpp server (2 slots) against an exhaustive sweep of every user
count in its range. The threshold is 2.5 times the sweep's own one-user p95, so the answer (about five
users: two in service, three waiting) does not depend on how fast this machine is, and
each level lasts 12 solo requests, measured first."""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks.capacity import compare

pytestmark = [
    pytest.mark.real,
    pytest.mark.integration,
    pytest.mark.slow,  # an exhaustive sweep of 24 user counts: six minutes; -m slow runs it
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="needs the [real] extra"),
]


@pytest.mark.timeout(900)
def test_the_search_agrees_with_an_exhaustive_sweep_on_llamacpp(tmp_path, record_property):
    sweep, search, slo_s = compare("llamacpp", max_users=24, slo_s=None, level_s=None, settle_s=None, work=tmp_path,
                                   slo_factor=2.5)
    record_property("measured", f"e2e p95 <= {slo_s:.3f} s: sweep {sweep.capacity} users in {sweep.wall_s:.0f} s, "
                                f"search {search.capacity} users in {search.wall_s:.0f} s ({search.detail})")
    assert sweep.capacity >= 2, sweep.detail
    assert abs(search.capacity - sweep.capacity) <= 1, f"sweep {sweep.detail}\nsearch {search.detail}"
    assert search.wall_s <= 0.4 * sweep.wall_s, (search.wall_s, sweep.wall_s)
