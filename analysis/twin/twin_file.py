"""Write the twin: the preset file the emulator reads (YAML), its fit report (Markdown) and a console summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from analysis.errors import InputError
from analysis.twin.decode import SOURCE_TEXT
from analysis.twin.fit import Twin
from analysis.twin.forms import LINEAR
from analysis.twin.params import Parameter
from analysis.twin.slowdown import EXTRAPOLATED, INTERPOLATED, MEASURED

FORMAT: Final = "ollama-loadtest.twin/1"
#: Significant digits written: more than any measured speed or time supports.
DIGITS: Final = 4
#: Decimals of a form's rms misfit (in units of f): an exact fit reads 0, not 5e-12.
RMS_DECIMALS: Final = 4


def _num(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")


def _text(value: float) -> str:
    return f"{value:.{DIGITS}g}"


def _joined(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(v for v in values if v)) or "unknown"


def twin_document(twin: Twin) -> dict[str, Any]:
    """The preset file's content (``FORMAT``)."""
    slots = sorted({r.slots for r in twin.runs if r.slots is not None})
    return {
        "format": FORMAT,
        "base": twin.base,
        "preset": {k: v if isinstance(v, int) else _num(v) for k, v in twin.preset().items()},
        "batch_slowdown": {row.b: _num(row.f) for row in twin.table},
        "source": {
            "runs": [r.path for r in twin.runs],
            "host": twin.host,
            "model": twin.model,
            "server": _joined([r.server for r in twin.runs]),
            "version": _joined([r.version for r in twin.runs]),
            "slots": slots,
        },
        "fit": _fit_section(twin),
    }


def _fit_section(twin: Twin) -> dict[str, Any]:
    section: dict[str, Any] = {
        "decode_time": {source: {"requests": n, "meaning": SOURCE_TEXT[source]}
                        for source, n in twin.decode_sources.items()},
    }
    section |= {p.name: _parameter_entry(twin, p) for p in twin.parameters}
    by_kind: dict[str, list[int]] = {}
    for row in twin.table:
        by_kind.setdefault(row.kind, []).append(row.b)
    section["batch_slowdown"] = {
        "measured": {p.b: {"f": _num(p.f), "runs": list(p.runs), "requests": p.requests} for p in twin.points},
        **{kind: _ranges(bs) for kind, bs in by_kind.items() if kind != MEASURED},
    }
    section["contention_form"] = {
        "chosen": twin.form.name,
        "why": twin.form_reason,
        "forms": {f.name: {"formula": f.formula, "params": {k: _num(v) for k, v in f.params.items()},
                           "rms": round(f.rms, RMS_DECIMALS), "judged": f.judged} for f in twin.forms},
    }
    if twin.notes:
        section["notes"] = list(twin.notes)
    return section


def _parameter_entry(twin: Twin, p: Parameter) -> dict[str, Any]:
    if p.value is None:
        return {"undetermined": p.why, "base_value": twin.base_value(p.name)}
    entry: dict[str, Any] = {"value": _num(p.value), **({"unit": p.unit} if p.unit else {}), "method": p.method,
                             "source": {"runs": list(p.runs), "requests": p.requests}}
    if p.spread is not None:
        entry["spread"] = {"kind": p.spread.kind, "low": _num(p.spread.low), "high": _num(p.spread.high)}
    if p.residual is not None:
        entry["residual"] = {"kind": p.residual_kind, "value": _num(p.residual)}
    if p.note:
        entry["note"] = p.note
    return entry


def _ranges(values: Sequence[int]) -> str:
    """``2, 3, 5-64``: consecutive integers as ranges."""
    parts: list[list[int]] = []
    for v in values:
        if parts and v == parts[-1][-1] + 1:
            parts[-1].append(v)
        else:
            parts.append([v])
    return ", ".join(str(p[0]) if len(p) == 1 else f"{p[0]}-{p[-1]}" for p in parts)


def twin_yaml(twin: Twin) -> str:
    """The preset file's text."""
    return (f"# emulator twin of {twin.target}, written by ollama-loadtest fit; the fit report is beside it (.md)\n"
            + yaml.safe_dump(twin_document(twin), sort_keys=False, allow_unicode=True, width=120))


def _value(twin: Twin, p: Parameter) -> str:
    if p.value is None:
        base = twin.base_value(p.name)
        return f"undetermined: {p.why} (base {twin.base}: {base:g}{' ' + p.unit if p.unit else ''})"
    return _text(p.value) + (f" {p.unit}" if p.unit else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _runs(twin: Twin) -> str:
    return f"{len(twin.runs)} run" + ("s" if len(twin.runs) > 1 else "")


def twin_markdown(twin: Twin, preset_name: str) -> str:
    """The fit report: parameters, the decode table, the contention forms and notes."""
    runs = [f"| {r.name} | `{r.path}` | {r.slots if r.slots is not None else 'unknown'} | "
            f"{_joined([r.server, r.version])} |" for r in twin.runs]
    timed = "; ".join(f"{SOURCE_TEXT[s]} for {n} requests" for s, n in twin.decode_sources.items())
    lines = [
        f"# Emulator twin of {twin.target}",
        "",
        f"Fitted by `ollama-loadtest fit` from {_runs(twin)}. Preset file: `{preset_name}` (format "
        f"`{FORMAT}`); the base preset `{twin.base}` fills every field the fit leaves out. Decode time: {timed}.",
        "",
        "| run | path | slots configured | server |",
        "|---|---|---|---|",
        *runs,
        "",
        "## Parameters",
        "",
        "| parameter | value | source | spread | residual | how |",
        "|---|---|---|---|---|---|",
        *[_parameter_row(twin, p) for p in twin.parameters],
        "",
        *_table_section(twin),
        *_forms_section(twin),
    ]
    if twin.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in twin.notes], ""]
    return "\n".join(lines)


def _parameter_row(twin: Twin, p: Parameter) -> str:
    if p.value is None:
        return f"| {p.name} | {_cell(_value(twin, p))} | | | | |"
    source = f"{', '.join(p.runs)}: {p.requests} requests"
    spread = "" if p.spread is None else f"{_text(p.spread.low)}-{_text(p.spread.high)} ({p.spread.kind})"
    residual = "" if p.residual is None else f"{_text(p.residual)} ({p.residual_kind})"
    how = p.method + (f"; {p.note}" if p.note else "")
    return "| " + " | ".join(_cell(c) for c in (p.name, _value(twin, p), source, spread, residual, how)) + " |"


def _table_section(twin: Twin) -> list[str]:
    solo = twin.parameter("solo_tps").value
    last = twin.table[-1].b
    lines = [
        "## Decode slowdown",
        "",
        f"`f(b) = r(1) / r(b)`: the speed of one sequence decoding alone over its speed with `b` decoding. The "
        f"emulator uses this table for b = 2-{last} and `1 + contention*(b-1)` beyond it. Measured rows: median "
        f"over the runs of each run's `r(1)/r(b)`; interpolated rows: linear between measured ones (`f(1) = 1`)"
        + ("; extrapolated rows: the chosen form." if twin.form.name != LINEAR else ".")
        + " Speeds are at solo_tps (one slot configured); with P slots the emulator divides them by "
        "1 + parallel_penalty*(P-1).",
        "",
        "| b | f(b) | per-sequence tok/s: solo_tps / f(b) | aggregate tok/s: b x that | kind | requests |",
        "|---|---|---|---|---|---|",
    ]
    contention = twin.parameter("contention").value
    if contention is not None:
        beyond = 1 + contention * last
        lines[2] += (f" Beyond the table the linear form gives f({last + 1}) = {_text(beyond)}, after the table's "
                     f"f({last}) = {_text(twin.table[-1].f)}.")
    for row in twin.table:
        speed = "" if solo is None else _text(solo / row.f)
        aggregate = "" if solo is None else _text(row.b * solo / row.f)
        kind = {MEASURED: "measured", INTERPOLATED: "interpolated", EXTRAPOLATED: f"extrapolated ({twin.form.name})"}
        lines.append(f"| {row.b} | {_text(row.f)} | {speed} | {aggregate} | {kind[row.kind]} | "
                     f"{row.requests if row.kind == MEASURED else ''} |")
    return [*lines, ""]


def _forms_section(twin: Twin) -> list[str]:
    lines = [
        "## Contention forms",
        "",
        "Fitted by least squares to the measured f(b); the misfit is the rms of predicted - measured f over "
        "b = " + ", ".join(str(p.b) for p in twin.points) + ". `contention` is always the linear fit.",
        "",
        "| form | fitted | rms misfit | judged |",
        "|---|---|---|---|",
        *[f"| {f.name} | `{f.describe()}` | {f.rms:.{RMS_DECIMALS}f} | "
          f"{'yes' if f.judged else 'no: no point to spare beyond its parameters'} |" for f in twin.forms],
        "",
        f"**{twin.form_reason}.**",
        "",
    ]
    return lines


def summary_lines(twin: Twin, paths: Sequence[Path]) -> list[str]:
    """A few lines for the console: the parameters, the form chosen, where the files are."""
    slots = sorted({r.slots for r in twin.runs if r.slots is not None})
    timed = ", ".join(f"{'server timers' if s == 'server' else 'client clock'} ({n} requests)"
                      for s, n in twin.decode_sources.items())
    fitted = [f"{p.name} {_value(twin, p)}" for p in twin.parameters if p.value is not None]
    missing = [p.name for p in twin.parameters if p.value is None]
    lines = [
        f"twin of {twin.target} from {_runs(twin)} (slots {', '.join(map(str, slots)) or 'unknown'}); "
        f"decode time from {timed}",
        "  " + ", ".join(fitted),
    ]
    if missing:
        lines.append(f"  undetermined, base {twin.base} fills: " + "; ".join(
            f"{p.name} ({p.why})" for p in twin.parameters if p.value is None))
    lines.append(f"  slowdown: {twin.form_reason}; table b = 2-{twin.table[-1].b} (measured b = "
                 + ", ".join(str(p.b) for p in twin.points) + ")")
    lines.append("wrote " + ", ".join(str(p) for p in paths))
    return lines


def write_twin(twin: Twin, out: Path) -> tuple[Path, Path]:
    """Write the preset file at ``out`` and the fit report beside it (same stem, ``.md``)."""
    if out.suffix == ".md":
        raise InputError(f"{out}: the preset file needs another suffix than .md (the report goes there)")
    report = out.with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(twin_yaml(twin), encoding="utf-8")
    report.write_text(twin_markdown(twin, out.name), encoding="utf-8")
    return out, report
