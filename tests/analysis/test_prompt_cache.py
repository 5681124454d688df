"""Prompt-cache hits: reported by the server, or inferred from Ollama's timers; the report's section.

Nine requests of host h1, model m, 10 s apart (each evaluated alone), rate = prompt_tokens / prompt_eval:

    1  1000 tok in 2.0 s    500      miss          TTFT 2.0
    2  1000 tok in 2.5 s    400      miss          TTFT 2.5
    3  1100 tok in 0.1 s  11000      hit           TTFT 0.1
    4  1200 tok in 0.05 s 24000      hit           TTFT 0.05
    5  1000 tok in 0.08 s 12500      hit           TTFT 0.08
    6   600 tok in 1.0 s    600      miss          TTFT 1.0
    7  cached_tokens 900, 0.2 s      reported hit  TTFT 0.2
    8  cached_tokens 0, 0.01 s       reported miss TTFT 0.01 (the server says so, however fast)
    9  no timers, no cached_tokens   not judged

Rates without cached_tokens, sorted: 400 500 600 11000 12500 24000; gaps 1.25 1.2 18.3 1.14 1.92: the widest,
18.3 > 5, parts the misses 400 500 600 (miss rate = median 500) from the rest; 11000, 12500 and 24000 are
above 5 x 500 = 2500: hits. (The median of all six, 5800, would have put the bar at 29000 and hidden all three.)
Hits: 3, 4, 5 inferred and 7 reported = 4 of 8 judged.
TTFT with a hit 0.05 0.08 0.1 0.2: p50 (0.08 + 0.1) / 2 = 0.09, p95 at h = 3 x 0.95 = 2.85: 0.1 + 0.85 x 0.1 = 0.185.
Without: 0.01 1.0 2.0 2.5: p50 1.5, p95 2.0 + 0.85 x 0.5 = 2.425.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.prompt_cache import cache_hits, miss_rate, prompt_cache_report
from tests.analysis.helpers import record, run_of, served

ROWS = [
    served(0, 0, 2.0, 1.0, prompt_tokens=1000),
    served(10, 0, 2.5, 1.0, prompt_tokens=1000),
    served(20, 0, 0.1, 1.0, prompt_tokens=1100),
    served(30, 0, 0.05, 1.0, prompt_tokens=1200),
    served(40, 0, 0.08, 1.0, prompt_tokens=1000),
    served(50, 0, 1.0, 1.0, prompt_tokens=600),
    served(60, 0, 0.2, 1.0, prompt_tokens=1000, cached_tokens=900),
    served(70, 0, 0.01, 1.0, prompt_tokens=1000, cached_tokens=0),
    record(t_start=80, t_first_token=80.5, t_end=81, prompt_tokens=1000),
]
PREFIXED = {"workloads": [{"name": "chat", "prefix": {"words": 800, "count": 1, "seed": 0}}]}


def test_the_miss_rate_is_the_median_below_the_widest_gap():
    assert miss_rate(pd.Series([500, 400, 11000, 24000, 12500, 600])) == 500
    assert miss_rate(pd.Series([350, 15000, 16000, 17000, 18000])) == 350  # mostly hits: one miss below the gap
    assert miss_rate(pd.Series([400, 500, 600, 1800])) == 550  # widest gap 3 <= 5: the median of all


def test_hits_reported_and_inferred():
    found = cache_hits(run_of(ROWS).records)
    assert list(found.hit.index) == list(range(8))  # request 9 has nothing to judge it by
    assert list(found.hit) == [False, False, True, True, True, False, True, False]
    assert list(found.reported) == [False] * 6 + [True, False]
    assert found.inferred.sum() == 3
    assert found.miss_rates == {("h1", "m"): 500}


def test_the_section_counts_hits_and_sets_ttft_with_and_without_side_by_side():
    report = prompt_cache_report(run_of(ROWS, info=PREFIXED))
    assert report is not None
    assert report.prefixes == ["workload chat: 1 prefix of 800 words, one per session"]
    assert (report.judged, report.unjudged, report.hits, report.reported, report.inferred) == (8, 1, 4, 1, 3)
    (row,) = report.table.to_dict("records")
    assert (row["requests"], row["hits"]) == (8, 4)
    assert (row["ttft_p50_hit_s"], row["ttft_p95_hit_s"]) == pytest.approx((0.09, 0.185))
    assert (row["ttft_p50_miss_s"], row["ttft_p95_miss_s"]) == pytest.approx((1.5, 2.425))


def test_no_section_without_prefixes_or_hits():
    misses = [served(10 * i, 0, 2.0, 1.0, prompt_tokens=1000) for i in range(3)]
    assert prompt_cache_report(run_of(misses)) is None
    shown = prompt_cache_report(run_of(misses, info=PREFIXED))
    assert shown is not None and (shown.hits, shown.judged) == (0, 3)
