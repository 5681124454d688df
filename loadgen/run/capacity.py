"""The capacity search as a Locust load shape: each probe a stage, judged on the records as they arrive.

A probe holds one level (users of the workload mix, or an arrival rate) for at least ``probe_duration``
and until ``min_requests`` requests that started after its ``settle`` time have completed; then every
worker ships its records and the probe is judged (``analysis.capacity.judge``). It ends early when it
has clearly failed: enough requests broke a threshold that the rest cannot rescue it, or latency keeps
climbing (the queue grows without a plateau). A probe too close to call is repeated once, judged on
both runs' requests together. ``CapacitySearch`` picks the next level; ``capacity.json`` in the run
directory holds every probe and the answer, rewritten after each probe.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from analysis.capacity import ProbeVerdict, capacity_line, clearly_failed, judge, queue_growing
from analysis.load import records_from_rows
from analysis.metrics import derive
from analysis.schema import CAPACITY_FILE
from analysis.slo import Slo
from loadgen.run.recorder import RunRecorder, slo_thresholds
from loadgen.run.search import CapacitySearch, Outcome
from loadgen.run.shape import Phase, ScenarioShape
from loadgen.scenario.load import Capacity
from loadgen.scenario.scenario import Scenario

log = logging.getLogger(__name__)

MODE: Final = "capacity"
#: A probe that cannot gather its requests is judged anyway after this many probe durations.
PATIENCE: Final = 4


@dataclass
class ProbeRun:
    """One probe as it runs: its level, when it was measured from, what it saw."""

    label: str
    level: float
    repeat: int
    t_begin: float
    measured_from: float
    rows: list[list[Any]] = field(default_factory=list)
    flush_token: int | None = None
    early_stop: str = ""


class CapacityShape(ScenarioShape):
    """Runs the search: a warm-up round if the load has one, then probes chosen one after another."""

    def __init__(self, scenario: Scenario, gate: float | None = None) -> None:
        load = scenario.load
        assert isinstance(load, Capacity)
        self.load = load
        self.slos = [Slo(key, value, workload.name) for workload in scenario.workloads
                     for key, value in slo_thresholds(workload.slo).items()]
        self.gate = gate if gate is not None else (scenario.capacity.min if scenario.capacity else None)
        self.unit = "req/s" if load.by_rate else "users"
        super().__init__([])

    def _reset(self) -> None:
        super()._reset()
        load = self.load
        start = (load.start_rate or 1.0) if load.by_rate else float(load.start)
        bound = load.max_rate if load.by_rate else float(load.max_users)
        precision = (load.rate_precision or start / 10) if load.by_rate else 1.0
        self.search = CapacitySearch(start, bound or start, load.growth, precision, whole=not load.by_rate)
        self.probes: list[tuple[ProbeRun, ProbeVerdict]] = []
        self.current: ProbeRun | None = None
        self.outcome: Outcome | None = None
        self.search_started = 0.0
        self._listening_to: RunRecorder | None = None
        self._probes_planned = 0
        warmup = [Phase("warmup", "warmup", load.warmup, float(load.warmup), requests=load.warmup)] \
            if load.warmup else []
        self.phases = [*warmup, self._probe_phase(start, 0)]

    # -- the shape's hooks ----------------------------------------------------------------------------

    def _begin(self, run: RunRecorder, phase: Phase) -> None:
        super()._begin(run, phase)
        if phase.mode != MODE:
            return
        if self._listening_to is not run:
            run.row_listeners.append(self._on_rows)
            self._listening_to = run
            self.search_started = time.monotonic()
        level = phase.rate if phase.rate is not None else float(phase.users)
        now = time.time()
        repeat = sum(1 for probe, _ in self.probes if probe.level == level)
        self.current = ProbeRun(phase.label, level, repeat, now, now + phase.warmup_s)

    def _phase_over(self, run: RunRecorder) -> bool:
        phase = self.phases[self._index]
        probe = self.current
        if phase.mode != MODE or probe is None:
            return super()._phase_over(run)
        if probe.flush_token is None:
            if not self._ready(probe):
                return False
            probe.flush_token = run.request_flush()  # every record of the probe, before the verdict
        if not run.flushed(probe.flush_token):
            return False
        self._conclude(run, probe)
        return True

    # -- one probe ------------------------------------------------------------------------------------

    def _on_rows(self, rows: list[list[Any]]) -> None:
        if self.current is not None:
            self.current.rows.extend(rows)

    def _measured(self, probe: ProbeRun, pooled: bool = True) -> pd.DataFrame:
        """The probe's requests that started after its settle time (``pooled``: with those of the earlier
        run at its level, for a repeat). A request the run cancelled is the run's doing, not the server's."""
        runs = [earlier for earlier, _ in self.probes if pooled and earlier.level == probe.level] + [probe]
        frames = [(records_from_rows(run.rows), run.measured_from) for run in runs]
        frame = pd.concat([f[f["t_start"] >= since] for f, since in frames], ignore_index=True)
        return derive(frame[frame["error"] != "cancelled"].reset_index(drop=True))

    def _ready(self, probe: ProbeRun) -> bool:
        """Whether the probe has run long enough, or has clearly failed already."""
        elapsed = time.time() - probe.t_begin
        if elapsed < self.load.settle:
            return False
        if time.monotonic() - self.search_started >= self.load.max_duration:
            probe.early_stop = "the search's time limit"
            self.outcome = "time"
            return True
        own = self._measured(probe, pooled=False)
        failed = clearly_failed(own, self.slos, self.load.confidence)
        if failed is not None:
            probe.early_stop = f"clearly failed: {failed.describe()}"
            return True
        if queue_growing(own["t_start"], own["e2e_s"]):
            probe.early_stop = "the queue kept growing: latency rose through the probe without a plateau"
            return True
        enough = len(own) >= self.load.min_requests
        return (elapsed >= self.load.probe_duration and enough) or elapsed >= PATIENCE * self.load.probe_duration

    def _conclude(self, run: RunRecorder, probe: ProbeRun) -> None:
        verdict = judge(self._measured(probe), self.slos, self.load.confidence, seed=len(self.probes))
        self.probes.append((probe, verdict))
        self.current = None
        limiting = verdict.limiting
        log.info("capacity probe %s: %s%s%s", probe.label, verdict.verdict,
                 f" ({limiting.describe()})" if limiting else "", f"; stopped early: {probe.early_stop}"
                 if probe.early_stop else "")
        if verdict.verdict == "close" and probe.repeat == 0 and not probe.early_stop and self.outcome is None:
            self.phases.append(self._probe_phase(probe.level, 1))  # too close to call: once more
        else:
            cut_short = probe.early_stop and self.outcome != "time"  # the time limit is no failure
            self.search.record(probe.level, verdict.passed and not cut_short)
            level = self.search.next_level() if self.outcome is None else None
            if level is not None:
                self.phases.append(self._probe_phase(level, 0))
            else:
                self.outcome = self.outcome or self.search.outcome
        self._write(run)
        if self.outcome is not None:
            print(f"\n{self.answer()}\n", flush=True)
            if self.gate is not None and (self.search.last_pass or 0) < self.gate:
                log.warning("capacity gate failed: fewer than %g %s passed: exit code 1", self.gate, self.unit)
                self._locust_runner.environment.process_exit_code = 1

    def _probe_phase(self, level: float, repeat: int) -> Phase:
        load = self.load
        name = f"{level:g}/s" if load.by_rate else f"u{int(level)}"
        self._probes_planned += 1
        label = f"cap{self._probes_planned}-{name}" + ("-again" if repeat else "")
        if load.by_rate:
            return Phase(label, MODE, load.max_users, float(load.max_users), warmup_s=load.settle, rate=level)
        users = int(level)
        return Phase(label, MODE, users, float(users), warmup_s=load.settle)

    # -- what the web UI shows --------------------------------------------------------------------------

    @property
    def peak_users(self) -> int:
        return self.load.max_users

    def describe(self) -> str:
        load = self.load
        if load.by_rate:
            return f"a capacity search over arrival rates up to {load.max_rate:g}/s"
        return f"a capacity search from {load.start} to at most {load.max_users} users"

    def progress(self) -> list[dict[str, str]]:
        """The search so far, a row per probe (the running one last, then the answer once there is one)."""
        rows = []
        for probe, verdict in self.probes:
            limiting = verdict.limiting
            rows.append({"probe": probe.label, "level": self._level_text(probe.level), "verdict": verdict.verdict,
                         "limiting": limiting.describe() if limiting else "", "note": probe.early_stop})
        if self.current is not None:
            rows.append({"probe": self.current.label, "level": self._level_text(self.current.level),
                         "verdict": "running", "limiting": "", "note": f"{len(self.current.rows)} records so far"})
        if self.outcome is not None:
            rows.append({"probe": "answer", "level": "", "verdict": self.outcome, "limiting": self.answer(),
                         "note": ""})
        return rows

    def _level_text(self, level: float) -> str:
        return f"{level:g} req/s" if self.load.by_rate else f"{int(level)} users"

    # -- the answer -----------------------------------------------------------------------------------

    def _level_verdict(self, level: float | None) -> tuple[ProbeRun, ProbeVerdict] | None:
        """The last probe at ``level`` (a repeat's verdict stands for both)."""
        return next(((p, v) for p, v in reversed(self.probes) if p.level == level), None)

    def answer(self) -> str:
        """``capacity: 6 users (6 passed: e2e p95 17.2 s <= 20 s; 7 failed: e2e p95 23.0 s > 20 s)``."""
        return capacity_line(self.summary())

    def summary(self) -> dict[str, Any]:
        """What ``capacity.json`` holds."""
        search = self.search
        passed, failed = self._level_verdict(search.last_pass), self._level_verdict(search.first_fail)
        deciding = failed or passed
        limiting = deciding[1].limiting if deciding else None
        return {
            "unit": self.unit,
            "value": self._number(search.last_pass or 0),
            "last_pass": self._number(search.last_pass),
            "first_fail": self._number(search.first_fail),
            "limiting": limiting.slo if limiting else None,
            "limiting_workload": limiting.workload if limiting else None,
            "outcome": self.outcome,
            "bound": self._number(search.bound),
            "confidence": self.load.confidence,
            "min": self.gate,
            "passed_gate": None if self.gate is None else (search.last_pass or 0) >= self.gate,
            "last_pass_text": _checks_text(passed[1]) if passed else "",
            "first_fail_text": _checks_text(failed[1]) if failed else "",
            "probes": [_probe_entry(probe, verdict, self.unit) for probe, verdict in self.probes],
        }

    def _number(self, level: float | None) -> float | int | None:
        """A level as written: whole users, or a rate."""
        return None if level is None else level if self.load.by_rate else int(level)

    def _write(self, run: RunRecorder) -> None:
        (run.dir / CAPACITY_FILE).write_text(json.dumps(self.summary(), indent=1) + "\n", encoding="utf-8")


def _checks_text(verdict: ProbeVerdict) -> str:
    limiting = verdict.limiting
    return limiting.describe() if limiting else "no SLO could be judged"


def _probe_entry(probe: ProbeRun, verdict: ProbeVerdict, unit: str) -> dict[str, Any]:
    return {
        "stage": probe.label,
        "users" if unit == "users" else "rate": int(probe.level) if unit == "users" else probe.level,
        "repeat": probe.repeat,
        "requests": max((check.n for check in verdict.checks), default=0),
        "verdict": verdict.verdict,
        "passed": verdict.passed and not probe.early_stop,
        "early_stop": probe.early_stop,
        "checks": [
            {"workload": c.workload, "slo": c.slo, "threshold": c.threshold, "observed": _finite(c.observed),
             "low": _finite(c.low), "high": _finite(c.high), "n": c.n, "verdict": c.verdict}
            for c in verdict.checks
        ],
    }


def _finite(value: float) -> float | None:
    return None if value != value else value  # NaN is not JSON
