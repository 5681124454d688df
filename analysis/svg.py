"""Small self-contained SVG charts: data in, an SVG string out. No report knowledge, no dependencies.

    chart([Series("4 slots", [1, 2, 4, 8], [18.4, 18.5, 33.2, 33.6])], title="Aggregate tok/s",
          x_label="concurrency", y_label="tok/s", x_scale="log2")

Series kinds: ``line`` (with point markers), ``step`` (a value holds until the next x) and ``scatter``.
Missing values (NaN/None) break lines. ``Rule`` draws a labelled dashed reference line. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
FONT = "font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float]
    kind: Literal["line", "step", "scatter"] = "line"
    color: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    value: float
    label: str
    axis: Literal["x", "y"] = "y"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9)
    last = max(first + 1, math.ceil(hi / step - 1e-9))
    return [round(i * step, 12) for i in range(first, last + 1)]


def fmt(value: float) -> str:
    """A short tick label: 1200 -> 1200, 0.25 -> 0.25, 1.5e-05 -> 1.5e-05."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


class _Scale:
    def __init__(self, lo: float, hi: float, start: float, end: float, log2: bool) -> None:
        self.log2 = log2
        self.lo, self.hi = (math.log2(lo), math.log2(hi)) if log2 else (lo, hi)
        if self.hi <= self.lo:
            self.hi = self.lo + 1.0
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        v = math.log2(value) if self.log2 else value
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def _points(series: Series) -> list[list[tuple[float, float]]]:
    """The series as runs of finite points (a missing value starts a new run)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(series.x, series.y, strict=True):
        if x is None or y is None or not (math.isfinite(float(x)) and math.isfinite(float(y))):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((float(x), float(y)))
    return [r for r in runs if r]


def chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 640,
    height: int = 320,
    x_scale: Literal["linear", "log2"] = "linear",
    y_min: float | None = 0.0,
    rules: Sequence[Rule] = (),
) -> str:
    """An SVG chart of ``series`` with axes, ticks, legend and title. ``y_min=None`` fits the data."""
    left, right, top, bottom = 60, 16, 30 + (18 if len(series) > 1 else 0), 44
    xs = [v for s in series for v in _finite(s.x)] + [r.value for r in rules if r.axis == "x"]
    ys = [v for s in series for v in _finite(s.y)] + [r.value for r in rules if r.axis == "y"]
    log2 = x_scale == "log2" and bool(xs) and min(xs) > 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" style="{FONT};font-size:11px;max-width:100%;height:auto">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2}" y="16" text-anchor="middle" style="font-size:13px;font-weight:600">'
        f"{escape(title)}</text>",
    ]
    if not xs or not ys:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888">no data</text></svg>')
        return "".join(parts)
    y_lo = min(ys) if y_min is None else min(y_min, min(ys))
    y_ticks = nice_ticks(y_lo, max(ys))
    if log2:
        x_ticks = [2.0**e for e in range(math.floor(math.log2(min(xs))), math.ceil(math.log2(max(xs))) + 1)]
    else:
        x_ticks = nice_ticks(min(xs), max(xs))
    sx = _Scale(x_ticks[0], x_ticks[-1], left, width - right, log2)
    sy = _Scale(y_ticks[0], y_ticks[-1], height - bottom, top, False)
    parts.append(f'<g stroke="#e5e5e5">{"".join(_grid(sx, sy, x_ticks, y_ticks))}</g>')
    parts.append(
        f'<g stroke="#333"><line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}"/></g>'
    )
    parts += [f'<text x="{sx(t):.1f}" y="{height - bottom + 14}" text-anchor="middle">{fmt(t)}</text>' for t in x_ticks]
    parts += [f'<text x="{left - 5}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>' for t in y_ticks]
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for rule in rules:
        parts.append(_rule(rule, sx, sy, left, width - right, top, height - bottom))
    for index, s in enumerate(series):
        parts.append(_draw(s, s.color or PALETTE[index % len(PALETTE)], sx, sy))
    if len(series) > 1:
        parts.append(_legend(series, left, 34))
    parts.append("</svg>")
    return "".join(parts)


def _grid(sx: _Scale, sy: _Scale, x_ticks: list[float], y_ticks: list[float]) -> list[str]:
    lines = [f'<line x1="{sx(t):.1f}" y1="{sy.start}" x2="{sx(t):.1f}" y2="{sy.end}"/>' for t in x_ticks]
    lines += [f'<line x1="{sx.start}" y1="{sy(t):.1f}" x2="{sx.end}" y2="{sy(t):.1f}"/>' for t in y_ticks]
    return lines


def _rule(rule: Rule, sx: _Scale, sy: _Scale, x0: float, x1: float, y0: float, y1: float) -> str:
    style = 'stroke="#555" stroke-dasharray="4 3"'
    if rule.axis == "y":
        y = sy(rule.value)
        return (f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" {style}/>'
                f'<text x="{x1 - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#555">{escape(rule.label)}</text>')
    x = sx(rule.value)
    # Its label on the side with room: left of a line in the right half of the plot.
    place = f'x="{x - 4:.1f}" text-anchor="end"' if x > (x0 + x1) / 2 else f'x="{x + 4:.1f}"'
    return (f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" {style}/>'
            f'<text {place} y="{y0 + 10}" fill="#555">{escape(rule.label)}</text>')


def _draw(series: Series, color: str, sx: _Scale, sy: _Scale) -> str:
    out = [f'<g fill="{color}" stroke="{color}"><title>{escape(series.name)}</title>']
    for run in _points(series):
        if series.kind == "scatter":
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" stroke="none" fill-opacity="0.45"/>'
                    for x, y in run]
            continue
        if series.kind == "step":
            run = [p for (x0, y0), (x1, _) in zip(run, run[1:], strict=False) for p in ((x0, y0), (x1, y0))] + run[-1:]
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
        out.append(f'<polyline fill="none" stroke-width="2" points="{points}"/>')
        if series.kind == "line":
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" stroke="none"/>' for x, y in run]
    out.append("</g>")
    return "".join(out)


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    out = []
    for index, s in enumerate(series):
        color = s.color or PALETTE[index % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{y - 8}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14:.1f}" y="{y + 1}">{escape(s.name)}</text>')
        x += 24 + 6.5 * len(s.name)
    return "".join(out)
