"""Distributions for counts and times (turns per chat, think time, words per tool result...).

Written forms: a number (constant); ``{min, max}`` (uniform); ``{mean, sd, min?, max?}`` (normal,
clipped); ``{dist: lognormal, median, sigma, min?, max?}``; ``{dist: exponential, mean, min?, max?}``;
``{choice: [values...]}``. A field declares its bounds with ``DistIn``; open-ended distributions are
clipped to them, so every sample is valid for the field. Sampling takes a ``random.Random``, so a seed
fixes every draw.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BeforeValidator, Field

from loadgen.scenario.errors import FieldProblem, show
from loadgen.scenario.spec import Spec, tagged_union
from loadgen.scenario.units import format_duration, parse_duration

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_TIME_KEYS = ("value", "min", "max", "mean", "sd", "median")


class _Dist(Spec):
    """Common to all distributions. ``integer`` is set by integer fields: samples are whole numbers."""

    integer: bool = False

    _payload_only = frozenset({"integer"})

    def sample(self, rng: random.Random) -> float:
        """One draw (an ``int`` for integer fields)."""
        value = self._draw(rng)
        if not self.integer:
            return value
        lo, hi = getattr(self, "min", None), getattr(self, "max", None)
        value = round(value)
        if lo is not None:
            value = max(value, math.ceil(lo))
        if hi is not None:
            value = min(value, math.floor(hi))
        return int(value)

    def _draw(self, rng: random.Random) -> float:
        raise NotImplementedError


def _clip(value: float, lo: float | None, hi: float | None) -> float:
    """``value`` within an open-ended distribution's bounds, which its field has filled in (``_bounded``)."""
    assert lo is not None and hi is not None, "sampled outside a dist field: min and max are not set"
    return min(max(value, lo), hi)


class Constant(_Dist):
    dist: Literal["constant"] = "constant"
    value: Number

    def _draw(self, rng: random.Random) -> float:
        return self.value


class Uniform(_Dist):
    dist: Literal["uniform"] = "uniform"
    min: Number
    max: Number

    def _draw(self, rng: random.Random) -> float:
        if self.integer:
            return rng.randint(math.ceil(self.min), math.floor(self.max))
        return rng.uniform(self.min, self.max)


class Normal(_Dist):
    dist: Literal["normal"] = "normal"
    mean: Number
    sd: Annotated[Number, Field(ge=0)]
    min: Number | None = None
    max: Number | None = None

    def _draw(self, rng: random.Random) -> float:
        return _clip(rng.gauss(self.mean, self.sd), self.min, self.max)


class LogNormal(_Dist):
    dist: Literal["lognormal"] = "lognormal"
    median: Annotated[Number, Field(gt=0)]
    sigma: Annotated[Number, Field(ge=0)]
    min: Number | None = None
    max: Number | None = None

    def _draw(self, rng: random.Random) -> float:
        return _clip(rng.lognormvariate(math.log(self.median), self.sigma), self.min, self.max)


class Exponential(_Dist):
    dist: Literal["exponential"] = "exponential"
    mean: Annotated[Number, Field(gt=0)]
    min: Number | None = None
    max: Number | None = None

    def _draw(self, rng: random.Random) -> float:
        return _clip(rng.expovariate(1 / self.mean), self.min, self.max)


class Choice(_Dist):
    dist: Literal["choice"] = "choice"
    choice: Annotated[tuple[Number, ...], Field(min_length=1)]

    def _draw(self, rng: random.Random) -> float:
        return rng.choice(self.choice)


def _infer(data: dict[str, Any]) -> str | None:
    if "choice" in data:
        return "choice"
    if "value" in data:
        return "constant"
    if "mean" in data and "sd" in data:
        return "normal"
    if "min" in data and "max" in data and "mean" not in data and "median" not in data:
        return "uniform"
    return None


_FORMS = (
    "a number, {min, max} (uniform), {mean, sd} (normal), {dist: lognormal, median, sigma}, "
    "{dist: exponential, mean} or {choice: [...]}"
)

_KINDS: dict[str, type[_Dist]] = {
    "constant": Constant,
    "uniform": Uniform,
    "normal": Normal,
    "lognormal": LogNormal,
    "exponential": Exponential,
    "choice": Choice,
}
if TYPE_CHECKING:  # what a type checker sees; at run time, the tagged union of the same members validates
    Dist = Constant | Uniform | Normal | LogNormal | Exponential | Choice
else:
    Dist = tagged_union(
        "dist",
        _KINDS,
        what="distribution",
        infer=_infer,
        missing=f"cannot tell which distribution this is; write {_FORMS}",
    )


def _to_seconds(value: Any, *where: str | int) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as err:
            raise FieldProblem(str(err), *where) from None
    return value


def _normalize(duration: bool) -> Callable[[Any], Any]:
    def normalize(value: Any) -> Any:
        if isinstance(value, str) and duration:
            value = _to_seconds(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"dist": "constant", "value": value}
        if isinstance(value, list):
            raise FieldProblem(f"must be {_FORMS}; for a list of values write {{choice: [...]}}")
        if not isinstance(value, dict):
            if isinstance(value, _Dist):
                return value
            raise FieldProblem(f"must be {_FORMS}, got {show(value)}")
        if not duration:
            return value
        value = {key: _to_seconds(item, key) if key in _TIME_KEYS else item for key, item in value.items()}
        if isinstance(value.get("choice"), list):
            value["choice"] = [_to_seconds(item, "choice", index) for index, item in enumerate(value["choice"])]
        return value

    return normalize


def _bounded(lo: float, hi: float, integer: bool, duration: bool) -> Callable[[_Dist], _Dist]:
    def text(value: float) -> str:
        return format_duration(value) if duration else f"{value:g}"

    def check(value: float | None, *where: str | int) -> None:
        if value is None:
            return
        if value < lo:
            raise FieldProblem(f"must be >= {text(lo)}, got {text(value)}", *where)
        if value > hi:
            raise FieldProblem(f"must be <= {text(hi)}, got {text(value)}", *where)
        if integer and not float(value).is_integer():
            raise FieldProblem(f"must be a whole number, got {value:g}", *where)

    def bound(dist: _Dist) -> _Dist:
        if isinstance(dist, Constant):
            check(dist.value)
        elif isinstance(dist, Choice):
            for index, value in enumerate(dist.choice):
                check(value, "choice", index)
        elif isinstance(dist, Uniform | Normal | LogNormal | Exponential):
            low, high = dist.min, dist.max
            check(low, "min")
            check(high, "max")
            if low is not None and high is not None and low > high:
                raise FieldProblem(f"must be >= min ({text(low)}), got {text(high)}", "max")
            return dist.model_copy(
                update={
                    "integer": integer,
                    "min": float(lo) if low is None else low,
                    "max": float(hi) if high is None else high,
                }
            )
        return dist.model_copy(update={"integer": integer})

    return bound


class DistIn(GroupedMetadata):
    """Field metadata for a distribution whose samples stay in ``[lo, hi]``: ``integer`` samples whole
    numbers, ``duration`` accepts durations (``500ms``, ``2s``) for the values and stores seconds. A field
    is ``Annotated[Dist, DistIn(lo=1, hi=100, integer=True)]``; its written forms are in the module's doc."""

    def __init__(self, *, lo: float, hi: float, integer: bool = False, duration: bool = False) -> None:
        self.lo, self.hi, self.integer, self.duration = lo, hi, integer, duration

    def __iter__(self) -> Iterator[object]:
        yield BeforeValidator(_normalize(self.duration))
        yield AfterValidator(_bounded(self.lo, self.hi, self.integer, self.duration))


def dist_field(*, lo: float, hi: float, integer: bool = False, duration: bool = False) -> Any:
    """The same field type built at run time (a model field is annotated with ``DistIn`` instead: a type
    checker reads annotations without running them)."""
    return Annotated[Dist, DistIn(lo=lo, hi=hi, integer=integer, duration=duration)]
