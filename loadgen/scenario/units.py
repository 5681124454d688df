"""Durations (``90``, ``500ms``, ``1h30m``), Ollama's ``keep_alive`` and fractions (``0.01``, ``1%``)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo

from loadgen.scenario.errors import FieldProblem, show
from loadgen.scenario.spec import Spec

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY

_UNITS = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY}
_DIGITS = r"\d+(?:\.\d*)?|\.\d+"
_UNIT = "|".join(_UNITS)
_NUMBER = re.compile(rf"-?(?:{_DIGITS})")
_PARTS = re.compile(rf"({_DIGITS})({_UNIT})")  # one number+unit part
_DURATION = re.compile(rf"(-?)((?:(?:{_DIGITS})(?:{_UNIT}))+)")
_DURATION_HELP = "a duration like 30s, 500ms, 5m or 1h30m (units ms, s, m, h, d), or a number of seconds"


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string of number+unit parts (``1h30m``, ``500ms``, ``2d``).

    Raises ``ValueError`` for anything else (booleans, unknown units, empty strings).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be {_DURATION_HELP}, got {show(value)}")
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return float(text)
        match = _DURATION.fullmatch(text)
        if not match:
            raise ValueError(f"must be {_DURATION_HELP}, got {show(value)}")
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PARTS.findall(match.group(2)))
        return -seconds if match.group(1) else seconds
    if not math.isfinite(value):
        raise ValueError(f"must be a finite duration, got {show(value)}")
    return float(value)


def format_duration(seconds: float) -> str:
    """A short human form: ``604800`` -> ``7d``, ``90`` -> ``1m30s``, ``0.25`` -> ``250ms``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds >= 1000 * DAY:
        return f"{seconds:g}s"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts, rest = [], seconds
    for unit in ("d", "h", "m"):
        whole, rest = divmod(rest, _UNITS[unit])
        if whole:
            parts.append(f"{int(whole)}{unit}")
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def duration_in(*, hi: float = WEEK, positive: bool = False) -> BeforeValidator:
    """Field metadata for a duration, stored as float seconds in ``[0, hi]`` (``(0, hi]`` when ``positive``):
    ``Annotated[float, duration_in(hi=HOUR, positive=True)]``."""

    def parse(value: Any) -> float:
        result = parse_duration(value)
        if positive and result <= 0:
            raise FieldProblem(f"must be a duration above zero, got {show(value)}")
        if result < 0:
            raise FieldProblem(f"must not be negative, got {show(value)}")
        if result > hi:
            raise FieldProblem(f"must be at most {format_duration(hi)}, got {show(value)}")
        return result

    return BeforeValidator(parse)


#: A duration of up to a week, as float seconds: zero or more, and above zero.
Duration = Annotated[float, duration_in()]
PositiveDuration = Annotated[float, duration_in(positive=True)]


class KeepAlive(Spec):
    """How long the server keeps the model loaded after a request: seconds, plus the form sent on the wire.

    ``seconds`` is -1 for "forever" and 0 for "unload after the request". ``wire`` is what goes into the
    request's ``keep_alive``: the string as written when Ollama (Go's ``time.ParseDuration``) reads it,
    otherwise a number of seconds.
    """

    seconds: float
    wire: str | int | float

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        try:
            value = parse_duration(data)
        except ValueError:
            raise FieldProblem(
                f"must be {_DURATION_HELP}; 0 unloads after each request, -1 keeps the model loaded; got {show(data)}"
            ) from None
        if value < 0 and value != -1:
            raise FieldProblem(f"must be -1 to keep the model loaded forever (no other negative), got {show(data)}")
        if value > WEEK:
            raise FieldProblem(
                f"must be at most {format_duration(WEEK)} (-1 keeps it loaded forever), got {show(data)}"
            )
        go_readable = isinstance(data, str) and "d" not in data and not _NUMBER.fullmatch(data.strip())
        wire = data.strip() if go_readable else (int(value) if value.is_integer() else value)
        return {"seconds": value, "wire": wire}


def _parse_fraction(value: Any) -> Any:
    fraction = value
    if isinstance(value, str):
        text = value.strip()
        if not (text.endswith("%") and _NUMBER.fullmatch(text[:-1].strip())):
            raise FieldProblem(f"must be a fraction between 0 and 1 or a percentage like '1%', got {show(value)}")
        fraction = float(text[:-1]) / 100
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and not 0 <= fraction <= 1:
        raise FieldProblem(f"must be between 0 and 1 (or 0% and 100%), got {show(value)}")
    return fraction


#: A fraction in [0, 1], written as a number or a percentage string (``"1%"``).
Fraction = Annotated[float, Field(strict=True), BeforeValidator(_parse_fraction)]
