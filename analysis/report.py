"""Build the report ``Document`` of one run from its ``Analysis``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analysis import charts, slots
from analysis.analyze import Analysis
from analysis.capacity_result import CapacityResult, limiting_curve, probe_table
from analysis.curve import COLUMNS as CURVE_COLUMNS
from analysis.curve import by_target
from analysis.document import Bullets, Document, Figure, Heading, Table, Text
from analysis.locust_csv import BUCKETED_NOTE, LocustView
from analysis.metrics import METRICS
from analysis.percentiles import METHOD
from analysis.prompt_cache import METHOD as CACHE_METHOD
from analysis.prompt_cache import PromptCacheReport
from analysis.replay import ReplayFidelity

CURVE_SHOWN = ["level", "x", "rounds", "requests", "errors", "n_503", "wall_s", "agg_tok_s", "req_s", "per_req_tok_s",
               "in_flight", "in_service", "waiting", "slot_wait_p95_s", "ttft_p95_s", "e2e_p95_s"]
ESTIMATORS = [
    f"busy-interval overlap: the highest m such that the server had >= m requests in service for at least "
    f"{slots.SUSTAINED:.0%} of the time the clients had >= m in flight (levels offered for less than "
    f"{slots.SUPPORT_SHARE:.0%} of busy time or one service time are not judged); a lower bound when no higher "
    "level was offered",
    "sweep fit: k minimising sum over levels of (L - min(rho*N, k))^2 + (Q - max(0, rho*N - k))^2, with N, L, Q "
    "the mean requests in flight, in service and waiting (Little's law over each level's wall) and rho = L/N at "
    "the lowest level",
    "server metrics: the most busy slots the server reported in server_metrics.csv (a lower bound unless requests "
    "were queued then)",
    "knee: the lowest concurrency whose aggregate tok/s reaches 90 % of the peak",
    "serial: aggregate tok/s within 1.2x of the lowest level's, per-request speed at the top level >= 85 % of the "
    "lowest's, and time (round wall, or median e2e for steady stages) growing in proportion to concurrency (0.75-1.33)",
    "cold start / reload: load_s >= max(0.5 s, 10 x the host and model's median load_s); a reload when a warm "
    "request had already completed",
]


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "?"


def overview(a: Analysis) -> list[str]:
    """What was measured, in a few lines."""
    run, info = a.run, a.run.info
    items = [h.describe() for h in a.hosts] or ["target unknown (run.json missing or without hosts)"]
    scenario = info.get("scenario") or {}
    if isinstance(scenario, dict) and scenario.get("name"):
        items.append(f"scenario {scenario['name']}" + (f" (variant {info['variant']})" if info.get("variant") else ""))
    if run.has_records:
        r = run.records
        assert r is not None
        span = float(r["t_end"].max() - r["t_start"].min())
        items.append(f"{len(r)} requests from {_when(float(r['t_start'].min()))} over {span:.1f} s: "
                     f"{int(r['ok'].sum())} succeeded, {int((~r['ok']).sum())} failed ({int(r['is_503'].sum())} "
                     f"of them 503), {int(r['warmup'].sum())} warm-up")
    else:
        items.append("plain Locust CSVs: " + BUCKETED_NOTE)
    return items


def build_report(a: Analysis) -> Document:
    doc = Document(f"Load test report: {a.run.name}")
    doc.add(Heading("What was measured"), Bullets(overview(a)))
    if a.replay is not None:
        _replay(doc, a.replay)
    if a.capacity is not None:
        _capacity(doc, a.capacity, a.capacity_shares)
    if a.slos:
        verdict = "FAILED" if a.slo_failed else "passed"
        text = f"SLOs {verdict} (percentiles over successful requests outside warm-up)."
        if a.capacity is not None:
            text += (" Over every probe at once: those beyond capacity break the SLOs by design, so the capacity, "
                     "not this verdict, passes or fails the run.")
        doc.add(Heading("SLO verdict"), Text(text),
                Table(a.verdicts), Table(a.goodput, "goodput: requests meeting every SLO per second of the span"))
    if a.advice:
        doc.add(Heading("Advice"), Bullets([x.text for x in a.advice]))
    if a.run.has_records:
        _saturation(doc, a)
        _latency(doc, a)
        if a.prompt_cache is not None:
            _prompt_cache(doc, a.prompt_cache)
        _cold_and_thinking(doc, a)
    if a.locust is not None:
        _locust(doc, a.locust)
    doc.add(Heading("Data quality"), Bullets(a.notes or ["nothing to report"]))
    _method(doc, a.run.has_records)
    return doc


def _capacity(doc: Document, c: CapacityResult, shares: pd.DataFrame) -> None:
    """The search's answer and gate, its probes, the limiting SLO against the level, each host's share."""
    doc.add(Heading("Capacity"), Text(c.line))
    if c.min is not None:
        doc.add(Text(f"Gate: at least {c.min:g} {c.unit}: {'passed' if c.passed_gate else 'FAILED'}."))
    confidence = f"{c.confidence:.0%} " if c.confidence else ""
    doc.add(Table(probe_table(c), f"probes in the order they ran, each with its deciding check: pass or fail when the "
                                  f"{confidence}interval lies on one side of the threshold, close when it straddles "
                                  "it (then repeated once); early_stop: why a probe was cut short"))
    curve = limiting_curve(c)
    if c.limiting is not None and not curve.empty:
        doc.add(charts.capacity_figure(curve, c.limiting, c.unit, c.last_pass))
    if len(shares) > 1 and c.last_pass is not None:
        doc.add(Table(shares, f"each host's share of the requests at {c.last_pass:g} {c.unit}, the last passing "
                              "level (warm-up excluded): the fleet's capacity as the routing split it"))


def _saturation(doc: Document, a: Analysis) -> None:
    sat = a.saturation
    doc.add(Heading("Saturation"))
    if sat.targets.empty:
        doc.add(Text("No successful requests to analyse."))
        return
    doc.add(Table(sat.targets.drop(columns=["prefill_s"]), "per host and model: slot estimates and the curve's shape"))
    curves = by_target(sat.curve) if not sat.curve.empty else {}
    if curves:
        doc.add(*charts.curve_figures({f"{m}@{h}": c for (h, m), c in curves.items()}))
    assert a.run.records is not None  # the section of a run with records
    t0 = float(a.run.records["t_start"].min())
    for row in sat.targets.itertuples(index=False):
        key = (row.host, row.model)
        doc.add(Heading(f"{row.model}@{row.host}", 3))
        if key in curves:
            doc.add(Table(curves[key][CURVE_SHOWN], "saturation curve (see Method for each column)"),
                    charts.latency_figure(curves[key], f"Latency against concurrency, {row.model}@{row.host}"))
        per_slot = sat.degradation[(sat.degradation["host"] == row.host) & (sat.degradation["model"] == row.model)]
        if not per_slot.empty:
            doc.add(charts.speed_figure(per_slot, sat.speed_points.get(key), "Per-request tok/s against busy slots"))
        if key in sat.busy_series:
            times, level = sat.busy_series[key]
            doc.add(charts.busy_figure(times, level, t0, row.slots, "Requests in service over time"))
        if not per_slot.empty:
            doc.add(Table(per_slot.drop(columns=["host", "model"]), "per-request speed by busy slots"))
        overlap = sat.overlap[(sat.overlap["host"] == row.host) & (sat.overlap["model"] == row.model)]
        if not overlap.empty:
            doc.add(Table(overlap.drop(columns=["host", "model"]),
                          "busy-interval overlap: time with >= m in flight (client) and in service (server)"))


def _latency(doc: Document, a: Analysis) -> None:
    doc.add(Heading("Latency"), Text(f"Percentiles: {METHOD}."),
            Table(a.latency, "per workload, host and model (successful requests, warm-up excluded)"),
            Table(a.latency_by_level, "per host, model and level", max_rows=120))
    if not a.over_time.empty:
        doc.add(charts.over_time_figure(a.over_time))
    doc.add(Table(a.errors, "errors by class; 503 (server busy) apart"))
    if not a.goodput_by_level.empty and a.slos:
        doc.add(Table(a.goodput_by_level, "goodput per level"))


def _prompt_cache(doc: Document, c: PromptCacheReport) -> None:
    """Shared prefixes, the hits and how they were found, TTFT with and without a hit."""
    lines = [f"shared prefix: {line}" for line in c.prefixes]
    lines.append(f"{c.hits} of {c.judged} requests judged were prompt-cache hits: {c.reported} reported by the "
                 f"server, {c.inferred} inferred from its timers")
    if c.unjudged:
        lines.append(f"{c.unjudged} successful requests could not be judged (no cached_tokens, no server timers)")
    lines += [f"miss rate {model}@{host}: {rate:.1f} prompt tok/s" for (host, model), rate in c.miss_rates.items()]
    doc.add(Heading("Prompt cache"), Bullets(lines), Text(f"How hits are found: {CACHE_METHOD}."),
            Table(c.table, "TTFT of requests with and without a prompt-cache hit (successful, warm-up excluded)"))


def _replay(doc: Document, r: ReplayFidelity) -> None:
    """How faithfully the trace was replayed: sent against scheduled, the lag, what was left out."""
    doc.add(Heading("Replay fidelity"), Text(r.line),
            Table(r.table(), "scheduling lag of the replayed requests: each was due at its recorded time (from the "
                             "window's start, divided by speed); a request that found every user busy, or waited for "
                             "the earlier requests of its session, went out late"))


def _cold_and_thinking(doc: Document, a: Analysis) -> None:
    if not a.cold.empty:
        counts = a.cold.groupby(["host", "model", "kind"]).size().rename("requests").reset_index()
        doc.add(Heading("Cold starts and reloads"), Table(counts), Table(a.cold, "the requests", max_rows=30))
    if not a.thinking.empty:
        doc.add(Heading("Thinking"), Table(a.thinking, "thinking chunks per output token, and time to first "
                                                       "thinking vs first visible token"))


def _locust(doc: Document, view: LocustView) -> None:
    doc.add(Heading("Locust's statistics"), Text(BUCKETED_NOTE + "."),
            Table(view.entries, "Locust entries (times in seconds)"))
    doc.add(*charts.locust_figures(view.history, view.users_curve))
    if not view.users_curve.empty:
        doc.add(Table(view.users_curve, "requests/s against users (from Locust's history)"))
    if not view.failures.empty:
        doc.add(Table(view.failures, "Locust failures (503 / server busy flagged)"))


def _method(doc: Document, records: bool) -> None:
    doc.add(Heading("Method"))
    if records:
        formulas = pd.DataFrame([(m.name, m.column, m.formula, m.unit, m.note) for m in METRICS],
                                columns=["metric", "column", "formula", "unit", "note"])
        doc.add(Text(f"Percentiles: {METHOD}."), Table(formulas, "per-request metrics"),
                Table(pd.DataFrame(list(CURVE_COLUMNS.items()), columns=["curve column", "meaning"])),
                Bullets(ESTIMATORS))
    else:
        doc.add(Text(BUCKETED_NOTE + "."))


def figures(doc: Document) -> list[Figure]:
    return [b for b in doc.blocks if isinstance(b, Figure)]
