"""How load is applied over time: a tagged union on ``shape``. Validated here; the Locust runtime
implements the behaviour of each shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from loadgen.scenario.errors import FieldProblem
from loadgen.scenario.spec import Spec, int_between, positive_number, tagged_union
from loadgen.scenario.units import duration_field, format_duration

MAX_USERS = 100_000
Users = int_between(1, MAX_USERS)
SpawnRate = positive_number(MAX_USERS)  # users started per second; None = all at once
Levels = Annotated[tuple[Users, ...], Field(min_length=1, max_length=1000)]


class _Shape(Spec):
    stop_timeout: duration_field() = 120.0  # how long in-flight work may finish once the run ends
    warmup: int_between(0, 10_000) = 0  # requests sent at once before the plan, recorded as warm-up


class Steady(_Shape):
    """A fixed number of users for ``duration`` (or until stopped)."""

    shape: Literal["steady"] = "steady"
    users: Users | None = None  # None as written: one per weighted workload plus the fixed counts
    spawn_rate: SpawnRate | None = None
    duration: duration_field(positive=True) | None = None


class Stage(Spec):
    users: int_between(0, MAX_USERS)
    duration: duration_field(positive=True)
    spawn_rate: SpawnRate | None = None


class Stages(_Shape):
    """Closed-loop stages: ramp to ``users`` and hold for ``duration``, one stage after another."""

    shape: Literal["stages"] = "stages"
    stages: Annotated[tuple[Stage, ...], Field(min_length=1, max_length=1000)]
    spawn_rate: SpawnRate | None = None  # default for stages that set none


class Sweep(_Shape):
    """One level of concurrency after another, each for a time or a number of completed requests."""

    shape: Literal["sweep"] = "sweep"
    levels: Levels
    level_duration: duration_field(positive=True) | None = None
    level_requests: int_between(1, 10_000_000) | None = None
    settle: duration_field() = 0.0  # warm-up at the start of each level
    spawn_rate: SpawnRate | None = None

    @model_validator(mode="after")
    def _check(self) -> Sweep:
        if self.level_duration is not None and self.level_requests is not None:
            raise FieldProblem("set level_duration or level_requests per level, not both", "level_requests")
        if self.level_duration is None and self.level_requests is None:
            raise FieldProblem("a sweep needs level_duration (time per level) or level_requests (requests per level)")
        if self.level_duration is not None and self.settle >= self.level_duration:
            raise FieldProblem(
                f"must be shorter than level_duration ({format_duration(self.level_duration)}), "
                f"got {format_duration(self.settle)}",
                "settle",
            )
        return self


class Rounds(_Shape):
    """For each level, ``rounds`` rounds of ``level`` requests sent at once, each round after the last ends."""

    shape: Literal["rounds"] = "rounds"
    levels: Levels
    rounds: int_between(1, 10_000) = 3


class ArrivalStage(Spec):
    rate: positive_number(1e6)  # requests per second
    duration: duration_field(positive=True)


class Arrivals(_Shape):
    """Open loop: requests arrive at ``rate`` whether or not earlier ones finished."""

    shape: Literal["arrivals"] = "arrivals"
    stages: Annotated[tuple[ArrivalStage, ...], Field(min_length=1, max_length=1000)]
    process: Literal["poisson", "constant"] = "poisson"
    max_users: Users = 100  # the pool of users that serve arrivals

    @model_validator(mode="after")
    def _check(self) -> Arrivals:
        if self.warmup:
            raise FieldProblem("open-loop arrivals take no warm-up round: start with a short low-rate stage", "warmup")
        return self


class Burst(Spec):
    """A burst sized to a server's capacity: every slot, the whole queue, and a margin past it."""

    slots: int_between(1, 4096)
    max_queue: int_between(0, 1_000_000)
    margin: int_between(0, 1_000_000) = 16


class Probe(_Shape):
    """One burst of requests at once: finds the slot count and where the queue starts refusing."""

    shape: Literal["probe"] = "probe"
    burst: Annotated[
        Annotated[int_between(1, 1_000_000), Tag("<count>")] | Annotated[Burst, Tag("<parts>")],
        Discriminator(lambda value: "<parts>" if isinstance(value, (dict, Burst)) else "<count>"),
    ]

    @property
    def requests(self) -> int:
        """How many requests the burst fires."""
        burst = self.burst
        return burst if isinstance(burst, int) else burst.slots + burst.max_queue + burst.margin


SHAPES: dict[str, Any] = {
    "steady": Steady,
    "stages": Stages,
    "sweep": Sweep,
    "rounds": Rounds,
    "arrivals": Arrivals,
    "probe": Probe,
}
LoadShape = tagged_union("shape", SHAPES, what="load shape", infer=lambda data: "steady")
