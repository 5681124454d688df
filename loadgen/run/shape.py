"""Load shapes from the scenario's ``load:`` section, as one Locust ``LoadTestShape``.

A scenario's load becomes a plan: a list of phases (a steady load, the steps of ``stages``, the
levels of a concurrency sweep, the closed rounds of each level, a queue-probe burst, open-loop arrival
stages), each with a user count, a spawn rate and an end (a duration, or a number of completed
requests). Closed rounds and arrivals also pace the users' sessions (``_pacing``) through messages.
The shape runs on the master (or local runner), writes a ``stages.csv`` row per phase and ends every
run the same graceful way: users are ramped down to zero, each finishing the request it has in flight
(up to the stop timeout), every worker is asked to ship its last records, and only then does the test
stop — so the requests in flight at the end are in ``requests.csv``. ``-u``, ``-r`` and ``-t`` on the
command line override a steady load's users, spawn rate and duration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from locust import LoadTestShape
from locust.runners import Runner

from loadgen.run import messages
from loadgen.run.recorder import RunRecorder, run_of
from loadgen.scenario.load import Arrivals, LoadShape, Probe, Replay, Rounds, Stages, Steady, Sweep

log = logging.getLogger(__name__)

#: Users stopped per second when draining: all at once, each still finishing its request in flight.
DRAIN_RATE: Final = 10_000.0


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of the plan."""

    label: str
    mode: str  # warmup, steady, stage, level, round, probe, arrivals, replay
    users: int
    spawn_rate: float
    duration: float | None = None  # seconds; None with requests=None: until stopped
    requests: int | None = None  # ends once this many requests have completed in the phase
    warmup_s: float = 0.0
    rate: float | None = None  # open-loop arrivals per second (the whole run's, split across nodes)

    @property
    def is_round(self) -> bool:
        """A closed round: released once every user is up, it ends when each has had its session."""
        return self.mode in ("warmup", "round", "probe")

    @property
    def waits_for_users(self) -> bool:
        """The phase begins once every user is up: a round, or a replay (whose first requests would
        otherwise find users still starting)."""
        return self.is_round or self.mode == "replay"


def plan(
    load: LoadShape, users: int | None = None, spawn_rate: float | None = None, duration: float | None = None
) -> list[Phase]:
    """The phases of a scenario's load; the arguments override a steady load (``-u``, ``-r``, ``-t``).
    An unset spawn rate starts every user of a phase at once. ``load.warmup`` requests go first, at once
    (one closed round), so that model loading and cold caches stay out of the measured phases."""
    warmup = [Phase("warmup", "warmup", load.warmup, float(load.warmup), requests=load.warmup)] if load.warmup else []
    return warmup + _measured(load, users, spawn_rate, duration)


def _measured(load: LoadShape, users: int | None, spawn_rate: float | None, duration: float | None) -> list[Phase]:
    if isinstance(load, Steady):
        n = users or load.users
        assert n is not None  # a loaded scenario's steady load has its user count
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
    if isinstance(load, Rounds):
        return [
            Phase(f"c{level}/r{r}", "round", level, float(level), requests=level)
            for level in load.levels
            for r in range(1, load.rounds + 1)
        ]
    if isinstance(load, Probe):
        burst = load.requests
        return [Phase(f"burst{burst}", "probe", burst, float(burst), requests=burst)]
    if isinstance(load, Arrivals):
        return [
            Phase(f"a{i + 1}-{s.rate:g}/s", "arrivals", load.max_users, float(load.max_users), s.duration, rate=s.rate)
            for i, s in enumerate(load.stages)
        ]
    if isinstance(load, Replay):
        # Until every request is recorded, or stop_timeout after the last was due (a node that vanished).
        return [Phase("replay", "replay", load.max_users, float(load.max_users), load.wall_span + load.stop_timeout,
                      len(load.requests))]
    raise ValueError(f"unknown load shape {load.shape!r}")


class ScenarioShape(LoadTestShape):
    """Runs a plan of phases, then drains gracefully and stops."""

    use_common_options = True  # we read -u/-r/-t ourselves (see plan())

    def __init__(self, phases: list[Phase]) -> None:
        super().__init__()
        self.phases = phases
        self._reset()

    @property
    def _locust_runner(self) -> Runner:
        """The runner this shape runs on: Locust's ``runner`` attribute, set before the first tick."""
        if self.runner is None:
            raise RuntimeError("the load shape has no runner yet")
        return self.runner

    def _reset(self) -> None:
        self._index = -1
        self._begun = False
        self._phase_start = 0.0
        self._phase_received = 0
        self._round_id = 0
        self._gate_open = False
        self._drain_token: int | None = None
        self._drain_deadline = 0.0

    @property
    def peak_users(self) -> int:
        """The most users the plan runs at once."""
        return max(phase.users for phase in self.phases)

    def describe(self) -> str:
        """The plan in a few words: "6 users for 30 s", "4 stages of up to 8 users", "a replay of 20 requests
        by 100 users"."""
        measured = [phase for phase in self.phases if phase.mode != "warmup"] or self.phases
        if len(measured) > 1:
            return f"{len(measured)} stages of up to {self.peak_users} users"
        only = measured[0]
        users = f"{only.users} user{'' if only.users == 1 else 's'}"
        if only.mode == "replay":
            return f"a replay of {only.requests} requests by {users}"
        return f"{users} for {only.duration:g} s" if only.duration else users

    def reset_time(self) -> None:
        super().reset_time()
        self._reset()

    def tick(self) -> tuple[int, float] | None:
        run = run_of(self._locust_runner.environment)
        if run is None or run.finished:  # the first tick comes before this test's run has started
            return self.phases[0].users, self.phases[0].spawn_rate
        while self._index < len(self.phases):
            if self._index >= 0:
                phase = self.phases[self._index]
                if not self._begun and self.get_current_user_count() >= phase.users:
                    self._begin(run, phase)  # a round is released once all its users are up
                if not self._begun or not self._phase_over(run):
                    return phase.users, phase.spawn_rate
            self._index += 1
            self._begun = False
            if self._index < len(self.phases) and not self.phases[self._index].waits_for_users:
                self._begin(run, self.phases[self._index])
        return self._drain(run)

    def _begin(self, run: RunRecorder, phase: Phase) -> None:
        log.info("stage %s: %d users%s", phase.label, phase.users, f", {phase.rate:g} arrivals/s" if phase.rate else "")
        # The first phase's users were started by the tick before the run existed, so a closed loop began
        # with the run; rounds, arrivals and replays begin now, when their release, rate or start goes out.
        paced = phase.waits_for_users or phase.rate is not None
        begin = run.info["started_at"] if self._index == 0 and not paced else time.time()
        warmup_s = None if phase.mode == "warmup" else phase.warmup_s
        run.stages.begin(phase.label, phase.mode, phase.users, phase.rate, warmup_s=warmup_s, at=begin)
        self._begun = True
        self._phase_start = time.monotonic() - (time.time() - begin)
        self._phase_received = run.store.received
        if phase.is_round or (self._round_id and not self._gate_open):
            # Release the round; the first phase after the rounds (e.g. warm-up) opens the gate for good.
            self._round_id += 1
            self._gate_open = not phase.is_round
            message = messages.RoundMessage(round_id=self._round_id, label=phase.label, open_all=self._gate_open)
            self._locust_runner.send_message(messages.ROUND, message)
        if phase.rate is not None:
            self._send_rate(run, phase.rate)
        if phase.mode == "replay":
            replay = messages.ReplayMessage(start=begin, nodes=sorted(run.live_workers()))
            self._locust_runner.send_message(messages.REPLAY, replay)

    def _send_rate(self, run: RunRecorder, rate: float) -> None:
        share = rate / max(1, len(run.live_workers()))
        self._locust_runner.send_message(messages.ARRIVALS, messages.ArrivalsMessage(rate=share))

    def _phase_over(self, run: RunRecorder) -> bool:
        phase = self.phases[self._index]
        if phase.requests is not None and run.store.received - self._phase_received >= phase.requests:
            return True
        return phase.duration is not None and time.monotonic() - self._phase_start >= phase.duration

    def _drain(self, run: RunRecorder) -> tuple[int, float] | None:
        if self._drain_token is None and self._drain_deadline == 0.0:
            log.info("load plan complete: stopping users, letting requests in flight finish")
            if any(p.rate is not None for p in self.phases):
                self._send_rate(run, 0.0)
            run.stages.begin("drain", "drain", 0)
            self._drain_deadline = time.monotonic() + (self._locust_runner.environment.stop_timeout or 0) + 60
        if self.get_current_user_count() > 0 and time.monotonic() < self._drain_deadline:
            return 0, DRAIN_RATE
        if self._drain_token is None:
            self._drain_token = run.request_flush()
        if run.drained(self._drain_token) or time.monotonic() > self._drain_deadline:
            run.stages.end()
            return None
        return 0, DRAIN_RATE
