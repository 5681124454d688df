"""Durations, keep_alive and fractions as scenario authors write them."""

import pytest
from pydantic import ValidationError

from loadgen.scenario.options import Options, Slo
from loadgen.scenario.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (90, 90.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("500ms", 0.5),
        ("45s", 45.0),
        ("1.5m", 90.0),
        ("1h30m", 5400.0),  # 3600 + 30 * 60
        ("2d", 172800.0),  # 2 * 86400
        ("1d2h3m4s5ms", 93784.005),  # 86400 + 7200 + 180 + 4 + 0.005
        (" 5m ", 300.0),
        ("-1", -1.0),
        ("-1m", -60.0),
    ],
)
def test_parse_duration(written, seconds):
    assert parse_duration(written) == pytest.approx(seconds)


@pytest.mark.parametrize("written", ["", "m", "5x", "1h 30m", "5 minutes", "1e3", True, None, [1], float("inf")])
def test_parse_duration_refuses(written):
    with pytest.raises(ValueError):
        parse_duration(written)


@pytest.mark.parametrize(
    ("seconds", "text"), [(604800, "7d"), (5400, "1h30m"), (90, "1m30s"), (0.25, "250ms"), (0, "0s"), (-60, "-1m")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("written", "seconds", "wire"),
    [
        ("5m", 300.0, "5m"),  # Go's time.ParseDuration reads it: sent as written
        ("1h30m", 5400.0, "1h30m"),
        (300, 300.0, 300),
        (0, 0.0, 0),  # unload after each request
        (-1, -1.0, -1),  # keep loaded forever
        ("-1", -1.0, -1),
        ("2d", 172800.0, 172800),  # Go has no 'd' unit: sent as seconds
        (1.5, 1.5, 1.5),
    ],
)
def test_keep_alive_keeps_its_wire_form(written, seconds, wire):
    keep_alive = Options.model_validate({"keep_alive": written}).keep_alive
    assert (keep_alive.seconds, keep_alive.wire) == (seconds, wire)
    assert type(keep_alive.wire) is type(wire)


@pytest.mark.parametrize("written", [-2, "-5m", "8d", "forever", True])
def test_keep_alive_refuses(written):
    with pytest.raises(ValidationError):
        Options.model_validate({"keep_alive": written})


def test_option_durations_are_seconds():
    options = Options.model_validate({"timeout": "2m", "connect_timeout": 0.5})
    assert (options.timeout, options.connect_timeout) == (120.0, 0.5)


@pytest.mark.parametrize(
    ("written", "fraction"), [("1%", 0.01), ("0.5%", 0.005), (" 100% ", 1.0), (0.02, 0.02), (0, 0.0)]
)
def test_error_rate_is_a_fraction_or_a_percentage(written, fraction):
    assert Slo.model_validate({"error_rate": written}).error_rate == pytest.approx(fraction)


@pytest.mark.parametrize("written", ["1", "abc%", "-1%", 1.5, True])
def test_error_rate_refuses(written):
    with pytest.raises(ValidationError):
        Slo.model_validate({"error_rate": written})
