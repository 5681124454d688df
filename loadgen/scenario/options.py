"""What a workload inherits from the top of the scenario and may override: request options and SLOs.

``None`` means "not set here". ``merged`` lays a workload's settings over the scenario's, over the
built-in defaults, so a loaded workload carries its effective values.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, field_validator

from loadgen.scenario.errors import FieldProblem, show
from loadgen.scenario.spec import SECRET_KEYS, Spec, within
from loadgen.scenario.units import HOUR, Fraction, KeepAlive, PositiveDuration, duration_in

THINK_LEVELS = ("low", "medium", "high", "max")
_JSON_SCALARS = (str, int, float, bool, type(None))


def _check_seed(value: Any) -> Any:
    if value == "per_request" or value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise FieldProblem(f"must fit in 64 bits, got {value}")
        return value
    raise FieldProblem(f"must be a whole number or per_request (a distinct seed for every request), got {show(value)}")


def _check_think(value: Any) -> Any:
    if isinstance(value, bool) or value in THINK_LEVELS or value is None:
        return value
    raise FieldProblem(f"must be true, false, low, medium, high or max, got {show(value)}")


def check_json(value: Any, *where: str | int) -> None:
    """Refuse values a JSON request body cannot carry (dates, sets, non-finite numbers...)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldProblem(f"must be a finite number, got {value}", *where)
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise FieldProblem(f"must fit in 64 bits, got {value}", *where)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FieldProblem(f"keys must be strings, got {show(key)}", *where)
            check_json(item, *where, key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, *where, index)
    elif not isinstance(value, _JSON_SCALARS):
        raise FieldProblem(
            f"must be plain JSON data (strings, numbers, booleans, lists, mappings), got {show(value)}", *where
        )


class Options(Spec):
    """Request options. The built-in defaults apply where neither the scenario nor the workload sets one."""

    num_predict: StrictInt | None = None  # -1 = unbounded
    temperature: Annotated[float, Field(strict=True, ge=0, le=2)] | None = None
    seed: Annotated[StrictInt | Literal["per_request"] | None, BeforeValidator(_check_seed)] = None
    num_ctx: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    keep_alive: KeepAlive | None = None
    think: Annotated[StrictBool | Literal["low", "medium", "high", "max"] | None, BeforeValidator(_check_think)] = None
    stream: StrictBool | None = None
    timeout: Annotated[float, duration_in(hi=24 * HOUR, positive=True)] | None = None
    connect_timeout: Annotated[float, duration_in(hi=HOUR, positive=True)] | None = None
    extra: dict[str, Any] = {}

    @field_validator("num_predict")
    @classmethod
    def _check_num_predict(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and not 1 <= value <= 1_000_000:
            raise FieldProblem(f"must be -1 (unbounded) or between 1 and 1000000, got {value}")
        return value

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in cls.model_fields:
                raise FieldProblem(f"{key} is a typed option: set options.{key} instead", key)
            if key.lower() in SECRET_KEYS:
                raise FieldProblem("secrets do not belong in a scenario file; use the host's api_key_env", key)
        check_json(value)
        return value

    def merged(self, over: Options) -> Options:
        """These options with every option that ``over`` sets laid on top (``extra`` merged by key)."""
        update = {name: value for name, value in over if value is not None and name != "extra"}
        return self.model_copy(update={**update, "extra": {**self.extra, **over.extra}})


#: Built-in defaults, under the scenario's and the workload's options.
DEFAULT_OPTIONS = Options(stream=True, timeout=300.0, connect_timeout=10.0)


class Slo(Spec):
    """Service-level objectives: a run fails its SLO when a measured value exceeds its threshold."""

    e2e_p95: PositiveDuration | None = None
    ttft_p95: PositiveDuration | None = None
    slot_wait_p95: PositiveDuration | None = None
    tpot_p95: PositiveDuration | None = None
    error_rate: Fraction | None = None

    @property
    def is_set(self) -> bool:
        """Any threshold set."""
        return any(value is not None for _, value in self)

    def merged(self, over: Slo) -> Slo:
        """These thresholds with every threshold that ``over`` sets laid on top."""
        return self.model_copy(update={name: value for name, value in over if value is not None})
