"""One call that runs every analysis on a run: what the report, summary.json and compare render."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from analysis import locust_csv
from analysis.advice import Advice, advise
from analysis.capacity_result import CapacityResult, host_shares, parse_capacity
from analysis.coldstart import cold_starts
from analysis.errors import InputError
from analysis.latency import error_table, latency_over_time, latency_table
from analysis.prompt_cache import PromptCacheReport, prompt_cache_report
from analysis.replay import ReplayFidelity, replay_fidelity
from analysis.run import Run
from analysis.saturation import Saturation, analyze_saturation
from analysis.slo import Slo, failed, goodput, slos, verdicts
from analysis.target import Target, targets
from analysis.thinking import thinking_summary

LEVEL_GROUPS = ("host", "model", "level")


@dataclass
class Analysis:
    """Every table the analysis computes for one run."""

    run: Run
    hosts: list[Target]
    slos: list[Slo]
    latency: pd.DataFrame
    latency_by_level: pd.DataFrame
    over_time: pd.DataFrame
    errors: pd.DataFrame
    verdicts: pd.DataFrame
    goodput: pd.DataFrame
    goodput_by_level: pd.DataFrame
    saturation: Saturation
    cold: pd.DataFrame
    thinking: pd.DataFrame
    advice: list[Advice]
    locust: locust_csv.LocustView | None
    notes: list[str] = field(default_factory=list)
    capacity: CapacityResult | None = None  # a capacity search's answer, with the gate in force
    capacity_shares: pd.DataFrame = field(default_factory=pd.DataFrame)  # per host, at the last passing level
    prompt_cache: PromptCacheReport | None = None  # with shared prefixes or prompt-cache hits
    replay: ReplayFidelity | None = None  # a trace replay's scheduled against actual send times

    @property
    def slo_failed(self) -> bool:
        return failed(self.verdicts)

    @property
    def failed(self) -> bool:
        """What the CLI exits 1 on: in a capacity search a capacity below its gate (its probes beyond capacity
        break the SLOs by design), in any other run a failed SLO verdict."""
        return self.capacity.passed_gate is False if self.capacity is not None else self.slo_failed


def analyze(run: Run, slo_overrides: Mapping[str, float] | None = None, window_s: float | None = None,
            capacity_min: float | None = None) -> Analysis:
    """Run every analysis on ``run``; ``slo_overrides`` replace run.json's thresholds of the same key;
    ``capacity_min`` replaces a capacity search's gate (``capacity.json``'s ``min``)."""
    slo_list, slo_notes = slos(run.info, slo_overrides)
    capacity = _capacity(run, capacity_min)
    if capacity is not None and slo_overrides:
        slo_notes.append("the capacity probes were judged during the run against the scenario's SLOs: --slo changes "
                         "the run-wide verdicts, not the capacity")
    hosts = targets(run.info)
    sat = analyze_saturation(run)
    cold = cold_starts(run)
    thinking = thinking_summary(run)
    locust = locust_csv.view(run.locust)
    notes = [*run.notes, *slo_notes, *sat.warnings]
    shares = pd.DataFrame()
    if run.has_records:
        assert run.records is not None
        if capacity is not None:
            shares = host_shares(run.records, capacity, [h.name for h in hosts])
        warmup = int(run.records["warmup"].sum())
        if warmup:
            notes.append(f"{warmup} warm-up requests (started within warmup_s of their stage's begin) are left out "
                         "of the statistics")
        notes += _locust_cross_check(run.records, locust)
    return Analysis(
        run=run,
        hosts=hosts,
        slos=slo_list,
        latency=latency_table(run),
        latency_by_level=latency_table(run, by=LEVEL_GROUPS),
        over_time=latency_over_time(run, window_s),
        errors=error_table(run),
        verdicts=verdicts(run, slo_list),
        goodput=goodput(run, slo_list),
        goodput_by_level=goodput(run, slo_list, by=LEVEL_GROUPS),
        saturation=sat,
        cold=cold,
        thinking=thinking,
        advice=advise(sat, slo_list, cold, thinking, hosts, capacity.line if capacity else None),
        locust=locust,
        notes=notes,
        capacity=capacity,
        capacity_shares=shares,
        prompt_cache=prompt_cache_report(run),
        replay=replay_fidelity(run),
    )


def _capacity(run: Run, minimum: float | None) -> CapacityResult | None:
    """The run's capacity answer judged against ``minimum`` (else its own gate); a gate needs a search."""
    if run.capacity is None:
        if minimum is not None:
            raise InputError(f"{run.name}: a capacity gate needs a capacity search (no capacity.json)")
        return None
    try:
        return parse_capacity(run.capacity).gated(minimum)
    except ValueError as exc:
        raise InputError(f"{run.name}: capacity: {exc}") from None


def _locust_cross_check(records: pd.DataFrame, locust: locust_csv.LocustView | None) -> list[str]:
    """Records and Locust's own E2E count should agree; a gap means lost records or a lagging CSV."""
    if locust is None:
        return []
    e2e = locust.entries[locust.entries["type"] == "E2E"]
    if e2e.empty:
        return []
    counted = int(e2e["requests"].sum())
    if abs(counted - len(records)) > max(2, 0.01 * counted):
        return [f"Locust counted {counted} E2E requests but requests.csv holds {len(records)}: records lost, or "
                "Locust's final CSV lagging (it is not rewritten at shutdown)"]
    return []
