"""Runs side by side (e.g. one server with 1 slot and with 4): their curves on shared charts, their
slot counts, knees and gains in one table, each capacity search's answer, and for a setting sweep the setting's
curve and the setting to use (``analysis.setting_curve``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis import charts
from analysis.analyze import Analysis
from analysis.curve import by_target
from analysis.document import Bullets, Document, Heading, Table, Text
from analysis.report import overview
from analysis.setting_curve import SettingCurve, setting_curve
from analysis.summary import plain

TARGET_COLUMNS = ["slots", "slots_lower_bound", "overlap", "fit", "server_metrics", "configured", "knee", "serial",
                  "onset_503", "solo_tok_s", "solo_agg_tok_s", "peak_agg_tok_s", "gain"]
CURVE_COLUMNS = ["level", "x", "wall_s", "agg_tok_s", "req_s", "per_req_tok_s", "slot_wait_p95_s", "ttft_p95_s",
                 "e2e_p95_s"]


def labels(analyses: Sequence[Analysis]) -> list[str]:
    """Run names: a run's variant (e.g. "4-slots") when every run has a distinct one, else the run's name;
    made unique by position where two runs share a name."""
    variants = [a.run.info.get("variant") for a in analyses]
    use_variants = all(variants) and len(set(variants)) == len(variants)
    names = [str(v) for v in variants] if use_variants else [a.run.name for a in analyses]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def _curves(analyses: Sequence[Analysis]) -> dict[str, pd.DataFrame]:
    """One curve per run and target, labelled by the run (and target when a run has several)."""
    out = {}
    for label, a in zip(labels(analyses), analyses, strict=True):
        curves = by_target(a.saturation.curve) if not a.saturation.curve.empty else {}
        for (host, model), curve in curves.items():
            out[label if len(curves) == 1 else f"{label} {model}@{host}"] = curve
    return out


def compare_tables(analyses: Sequence[Analysis]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(targets, curves): the slot/knee/gain row of every run's targets, and every run's curve, long form."""
    targets, curves = [], []
    for label, a in zip(labels(analyses), analyses, strict=True):
        t = a.saturation.targets
        if not t.empty:
            targets.append(t[["host", "model", *TARGET_COLUMNS]].assign(slo_failed=a.slo_failed).assign(run=label))
    for label, curve in _curves(analyses).items():
        curves.append(curve[CURVE_COLUMNS].assign(run=label))
    return _run_first(targets), _run_first(curves)


def _run_first(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames as one table, its ``run`` column first."""
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return table[["run", *[c for c in table.columns if c != "run"]]]


def findings(targets: pd.DataFrame) -> list[str]:
    """Plain sentences comparing the runs' slots, gains and peaks."""
    if targets.empty:
        return ["no run has records to compare"]
    out = []
    for row in targets.itertuples(index=False):
        serial = " (serial)" if row.serial else ""
        slots = "slot" if str(row.overlap) == "1" else "slots"
        where = f"{row.run} {row.model}@{row.host}"
        if pd.isna(row.knee):
            out.append(f"{where}: no curve")
            continue
        out.append(f"{where}: {row.overlap} {slots} by overlap, {row.fit} by sweep fit{serial}; knee at {row.knee:g}, "
                   f"peak aggregate {row.peak_agg_tok_s:.1f} tok/s = x{row.gain:.2f} its lowest level")
    peaks = targets.dropna(subset=["peak_agg_tok_s"])
    if len(peaks) > 1:
        low, high = peaks.loc[peaks["peak_agg_tok_s"].idxmin()], peaks.loc[peaks["peak_agg_tok_s"].idxmax()]
        out.append(f"peak aggregate throughput: {high['run']} is x{high['peak_agg_tok_s'] / low['peak_agg_tok_s']:.2f} "
                   f"{low['run']}")
    return out


def sweep(analyses: Sequence[Analysis]) -> SettingCurve | None:
    """The setting's curve and recommendation when the runs are a setting sweep, else None."""
    return setting_curve(labels(analyses), analyses)


def _findings(targets: pd.DataFrame, curve: SettingCurve | None) -> list[str]:
    """``findings``, and the sweep's recommendation."""
    return [*findings(targets), *([curve.recommendation.line] if curve is not None else [])]


def build_compare(analyses: Sequence[Analysis]) -> Document:
    targets, curves = compare_tables(analyses)
    setting = sweep(analyses)
    note = predicted_from(analyses)
    doc = Document(("Prediction: " if note else "Comparison: ") + " vs ".join(labels(analyses)))
    if note:
        doc.add(Text(f"Every number here is {note}."))
    doc.add(Heading("Runs"))
    for label, a in zip(labels(analyses), analyses, strict=True):
        doc.add(Text(f"{label}:"), Bullets([*overview(a), *([a.capacity.line] if a.capacity is not None else [])]))
    doc.add(Heading("Findings"), Bullets(_findings(targets, setting)))
    if not targets.empty:
        doc.add(Table(targets, "slots, knee and gain per run, host and model"))
    curve_map = _curves(analyses)
    if curve_map:
        doc.add(*charts.curve_figures(curve_map), Table(curves, "the curves, level by level", max_rows=200))
    if setting is not None:
        doc.add(*setting.blocks())
    return doc


def compare_summary(analyses: Sequence[Analysis]) -> dict[str, Any]:
    targets, curves = compare_tables(analyses)
    setting = sweep(analyses)
    result: dict[str, Any] = plain({
        "runs": [{"label": label, "path": str(a.run.path) if a.run.path else None, "slo_failed": a.slo_failed,
                  "capacity": _capacity(a)} for label, a in zip(labels(analyses), analyses, strict=True)],
        "predicted": predicted_from(analyses),
        "findings": _findings(targets, setting),
        "targets": targets,
        "curves": curves,
        **(setting.to_json() if setting is not None else {"setting_curve": None, "recommendation": None}),
    })
    return result


def predicted_from(analyses: Sequence[Analysis]) -> str | None:
    """What the runs were predicted from (``ollama-loadtest whatif``'s note in run.json), when every one was."""
    notes = [(a.run.info.get("predicted") or {}).get("note") for a in analyses]
    return str(notes[0]) if notes and all(notes) and len(set(notes)) == 1 else None


def _capacity(a: Analysis) -> dict[str, Any] | None:
    """A capacity search's answer in brief; None for other runs."""
    c = a.capacity
    if c is None:
        return None
    answer = c.to_json()
    brief = {key: answer[key] for key in ("unit", "value", "outcome", "limiting", "min", "passed_gate")}
    return brief | {"line": c.line}
