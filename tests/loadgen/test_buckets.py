"""Locust's histogram buckets, made finer for LLM latencies."""

import pytest

from loadgen.plugin import bucket_response_time


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [
        (0.4, 0),  # under a second: whole milliseconds
        (147.6, 148),
        (999.4, 999),
        (3432.0, 3430),  # 3 significant digits: 10 ms steps up to 10 s (Locust: 3400)
        (58760.0, 58800),  # 100 ms steps up to 100 s (Locust: 59000)
        (123456.0, 123000),
    ],
)
def test_three_significant_digits(ms, bucket):
    assert bucket_response_time(ms) == bucket
