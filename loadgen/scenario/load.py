"""How load is applied over time: a tagged union on ``shape``. Validated here; the Locust runtime
implements the behaviour of each shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    model_validator,
)

from loadgen.scenario.errors import FieldProblem
from loadgen.scenario.prompts import Text
from loadgen.scenario.spec import Spec, context_value, from_payload, positive_up_to, tagged_union, within
from loadgen.scenario.traces.schedule import (
    MAX_REPLAY_REQUESTS,
    Format,
    TraceRequest,
    TraceSession,
    TraceSummary,
    read_schedule,
)
from loadgen.scenario.units import Duration, PositiveDuration, format_duration

MAX_USERS = 100_000
Users = Annotated[StrictInt, within(1, MAX_USERS)]
SpawnRate = Annotated[float, positive_up_to(MAX_USERS)]  # users started per second; None = all at once
Rate = Annotated[float, positive_up_to(1e6)]  # requests per second
Levels = Annotated[tuple[Users, ...], Field(min_length=1, max_length=1000)]


class _Shape(Spec):
    stop_timeout: Duration = 120.0  # how long in-flight work may finish once the run ends
    warmup: Annotated[StrictInt, within(0, 10_000)] = 0  # requests sent at once before the plan, recorded as warm-up


class Steady(_Shape):
    """A fixed number of users for ``duration`` (or until stopped)."""

    shape: Literal["steady"] = "steady"
    users: Users | None = None  # None as written: one per weighted workload plus the fixed counts
    spawn_rate: SpawnRate | None = None
    duration: PositiveDuration | None = None


class Stage(Spec):
    users: Annotated[StrictInt, within(0, MAX_USERS)]
    duration: PositiveDuration
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
    level_duration: PositiveDuration | None = None
    level_requests: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    settle: Duration = 0.0  # warm-up at the start of each level
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
    rounds: Annotated[StrictInt, within(1, 10_000)] = 3


class ArrivalStage(Spec):
    rate: Rate  # requests per second
    duration: PositiveDuration


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

    slots: Annotated[StrictInt, within(1, 4096)]
    max_queue: Annotated[StrictInt, within(0, 1_000_000)]
    margin: Annotated[StrictInt, within(0, 1_000_000)] = 16


class Probe(_Shape):
    """One burst of requests at once: finds the slot count and where the queue starts refusing."""

    shape: Literal["probe"] = "probe"
    burst: Annotated[
        Annotated[StrictInt, within(1, 1_000_000), Tag("<count>")] | Annotated[Burst, Tag("<parts>")],
        Discriminator(lambda value: "<parts>" if isinstance(value, (dict, Burst)) else "<count>"),
    ]

    @property
    def requests(self) -> int:
        """How many requests the burst fires."""
        burst = self.burst
        return burst if isinstance(burst, int) else burst.slots + burst.max_queue + burst.margin


class Capacity(_Shape):
    """A search for the most load the SLOs hold: closed-loop users of the workload mix (or, with
    ``max_rate``, open-loop arrivals), raised by ``growth`` from ``start`` until a probe fails, then
    bisected between the last pass and the first fail down to one user (or ``rate_precision``)."""

    shape: Literal["capacity"] = "capacity"
    start: Users = 1
    max_users: Users = 64  # the bound in users; in arrivals mode, the pool of users serving arrivals
    growth: Annotated[float, Field(strict=True, gt=1, le=16)] = 2.0
    probe_duration: PositiveDuration = 30.0  # at least this long per probe...
    min_requests: Annotated[StrictInt, within(1, 1_000_000)] = 30  # ...and at least this many measured requests
    settle: Duration = 5.0  # the start of each probe, excluded as warm-up
    max_duration: PositiveDuration = 1800.0  # the whole search's time limit
    confidence: Annotated[float, Field(strict=True, ge=0.5, le=0.999)] = 0.9
    start_rate: Rate | None = None  # arrivals mode: first rate (requests/s; default 1)
    max_rate: Rate | None = None  # arrivals mode: the bound
    rate_precision: Rate | None = None  # arrivals mode: bisect until this close (default 10%)
    process: Literal["poisson", "constant"] = "poisson"

    @property
    def by_rate(self) -> bool:
        return self.max_rate is not None

    @model_validator(mode="after")
    def _check(self) -> Capacity:
        if self.start > self.max_users and not self.by_rate:
            raise FieldProblem(f"must be at most max_users ({self.max_users}), got {self.start}", "start")
        if self.settle >= self.probe_duration:
            raise FieldProblem(f"must be shorter than probe_duration ({format_duration(self.probe_duration)}), "
                               f"got {format_duration(self.settle)}", "settle")
        if not self.by_rate:
            for key in ("start_rate", "rate_precision"):
                if getattr(self, key) is not None:
                    raise FieldProblem("applies to a search over arrival rates: set max_rate too", key)
        elif self.start_rate is not None and self.max_rate is not None and self.start_rate > self.max_rate:
            raise FieldProblem(f"must be at most max_rate ({self.max_rate:g}), got {self.start_rate:g}", "start_rate")
        if self.warmup and self.by_rate:
            raise FieldProblem("open-loop arrivals take no warm-up round: each probe's settle time is its warm-up",
                               "warmup")
        return self


class Window(Spec):
    """A stretch of a trace: ``[start, end)`` seconds from its first request (``end`` unset: to its end)."""

    start: Duration = 0.0
    end: PositiveDuration | None = None

    @model_validator(mode="after")
    def _check(self) -> Window:
        if self.end is not None and self.end <= self.start:
            raise FieldProblem(f"must be after start ({format_duration(self.start)}), got {format_duration(self.end)}",
                               "end")
        return self


class Replay(_Shape):
    """Open loop from a recorded trace: each request sent at its recorded time (from the window's start,
    divided by ``speed``) with its recorded sizes, in its session. The file is read here, once; the
    schedule (``requests``, ``sessions``) ships to the workers."""

    shape: Literal["replay"] = "replay"
    file: Text
    format: Format
    speed: Annotated[float, positive_up_to(1000)] = 1.0  # 2: twice as fast as recorded
    window: Window = Window()
    max_requests: Annotated[StrictInt, within(1, MAX_REPLAY_REQUESTS)] | None = None  # the first N in the window
    max_users: Users = 100  # the pool of users that send due requests
    skip_bad: StrictBool = False  # skip malformed rows (counted) instead of refusing the file
    requests: tuple[TraceRequest, ...] = ()
    sessions: tuple[TraceSession, ...] = ()
    summary: TraceSummary | None = None

    _payload_only = frozenset({"requests", "sessions", "summary"})

    @model_validator(mode="wrap")
    @classmethod
    def _resolve(cls, data: Any, handler: ModelWrapValidatorHandler[Replay], info: ValidationInfo) -> Replay:
        replay = handler(data)
        if from_payload(info) or isinstance(data, Replay):
            return replay
        if replay.warmup:
            raise FieldProblem("a replay takes no warm-up round: the trace is sent as recorded (window: {start} "
                               "skips its beginning)", "warmup")
        path = (context_value(info, "base_dir") or Path(".")) / replay.file
        schedule = read_schedule(path, replay.format, replay.window.start, replay.window.end, replay.max_requests,
                                 replay.skip_bad)
        return replay.model_copy(update={"requests": schedule.requests, "sessions": schedule.sessions,
                                         "summary": schedule.summary})

    def due(self, index: int) -> float:
        """Seconds from the replay's start to when request ``index`` is due: its time on the trace's clock
        from the window's start, divided by ``speed``."""
        return self.requests[index].at / self.speed

    @property
    def wall_span(self) -> float:
        """Seconds from the replay's start to its last request being due."""
        return self.due(-1) if self.requests else 0.0


SHAPES: dict[str, type[_Shape]] = {
    "steady": Steady,
    "stages": Stages,
    "sweep": Sweep,
    "rounds": Rounds,
    "arrivals": Arrivals,
    "probe": Probe,
    "capacity": Capacity,
    "replay": Replay,
}
if TYPE_CHECKING:  # what a type checker sees; at run time, the tagged union of the same members validates
    LoadShape = Steady | Stages | Sweep | Rounds | Arrivals | Probe | Capacity | Replay
else:
    LoadShape = tagged_union("shape", SHAPES, what="load shape", infer=lambda data: "steady")
