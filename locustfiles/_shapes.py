"""Load shapes from the scenario's ``load:`` section, as one Locust ``LoadTestShape``.

A scenario's load becomes a plan: a list of phases (a steady load, the steps of ``stages``, the
levels of a concurrency sweep, a queue-probe burst), each with a user count, a spawn rate and an end
(a duration, or a number of completed requests). The shape runs on the master (or local runner),
writes a ``stages.csv`` row per phase and ends every run the same graceful way: users are ramped down
to zero, each finishing the request it has in flight (up to the stop timeout), every worker is asked
to ship its last records, and only then does the test stop — so the requests in flight at the end are
in ``requests.csv``. ``-u``, ``-r`` and ``-t`` on the command line override a steady load's users,
spawn rate and duration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from locust import LoadTestShape

from ._run import Run, run_of
from ._load_shapes import LoadShape, Probe, Stages, Steady, Sweep

log = logging.getLogger(__name__)

#: Users stopped per second when draining: all at once, each still finishing its request in flight.
DRAIN_RATE: Final = 10_000.0


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of the plan."""

    label: str
    mode: str  # steady, stage, level, probe
    users: int
    spawn_rate: float
    duration: float | None = None  # seconds; None with requests=None: until stopped
    requests: int | None = None  # ends once this many requests have completed in the phase
    warmup_s: float = 0.0


def plan(
    load: LoadShape, users: int | None = None, spawn_rate: float | None = None, duration: float | None = None
) -> list[Phase]:
    """The phases of a scenario's load; the arguments override a steady load (``-u``, ``-r``, ``-t``).
    An unset spawn rate starts every user of a phase at once."""
    if isinstance(load, Steady):
        n = users or load.users
        return [Phase("steady", "steady", n, spawn_rate or load.spawn_rate or n, duration or load.duration)]
    if isinstance(load, Stages):
        return [
            Phase(f"s{i + 1}-u{s.users}", "stage", s.users, s.spawn_rate or load.spawn_rate or max(s.users, 1),
                  s.duration)
            for i, s in enumerate(load.stages)
        ]
    if isinstance(load, Sweep):
        return [
            Phase(f"c{level}", "level", level, load.spawn_rate or level, load.level_duration, load.level_requests,
                  load.settle)
            for level in load.levels
        ]
    if isinstance(load, Probe):
        burst = load.requests
        return [Phase(f"burst{burst}", "probe", burst, float(burst), None, burst)]
    raise ValueError(f"load shape {load.shape!r} is not run by ScenarioShape")


class ScenarioShape(LoadTestShape):
    """Runs a plan of phases, then drains gracefully and stops."""

    use_common_options = True  # we read -u/-r/-t ourselves (see plan())

    def __init__(self, phases: list[Phase]) -> None:
        super().__init__()
        self.phases = phases
        self._reset()

    def _reset(self) -> None:
        self._index = -1
        self._phase_start = 0.0
        self._phase_received = 0
        self._drain_token: int | None = None
        self._drain_deadline = 0.0

    def reset_time(self) -> None:
        super().reset_time()
        self._reset()

    def tick(self) -> tuple[int, float] | None:
        run = run_of(self.runner.environment)
        if run is None:  # the first tick comes before the test (and so the run) has started
            return self.phases[0].users, self.phases[0].spawn_rate
        while self._index < len(self.phases):
            if self._index >= 0 and not self._phase_over(run):
                phase = self.phases[self._index]
                return phase.users, phase.spawn_rate
            self._index += 1
            if self._index < len(self.phases):
                self._begin(run, self.phases[self._index])
        return self._drain(run)

    def _begin(self, run: Run, phase: Phase) -> None:
        log.info("stage %s: %d users", phase.label, phase.users)
        # The first phase's users were started by the tick before the run existed: it began with the run.
        begin = run.info["started_at"] if self._index == 0 else time.time()
        run.stages.begin(phase.label, phase.mode, phase.users, warmup_s=phase.warmup_s, at=begin)
        self._phase_start = time.monotonic() - (time.time() - begin)
        self._phase_received = run.store.received

    def _phase_over(self, run: Run) -> bool:
        phase = self.phases[self._index]
        if phase.requests is not None and run.store.received - self._phase_received >= phase.requests:
            return True
        return phase.duration is not None and time.monotonic() - self._phase_start >= phase.duration

    def _drain(self, run: Run) -> tuple[int, float] | None:
        if self._drain_token is None and self._drain_deadline == 0.0:
            log.info("load plan complete: stopping users, letting requests in flight finish")
            run.stages.begin("drain", "drain", 0)
            self._drain_deadline = time.monotonic() + (self.runner.environment.stop_timeout or 0) + 60
        if self.get_current_user_count() > 0 and time.monotonic() < self._drain_deadline:
            return 0, DRAIN_RATE
        if self._drain_token is None:
            self._drain_token = run.request_flush()
        if run.drained(self._drain_token) or time.monotonic() > self._drain_deadline:
            run.stages.end()
            return None
        return 0, DRAIN_RATE
