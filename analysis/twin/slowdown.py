"""How each sequence's decode speed falls as more share the engine: ``f(b) = r(1) / r(b)``.

Per run, ``r(b)`` is the median speed of the requests whose batch rounds to ``b``, and ``f(b)`` divides the
same run's ``r(1)`` by it, so the run's configured slot count cancels out; a ``b`` seen in fewer than
``MIN_REQUESTS`` requests of a run is left out. Runs combine per ``b`` by the median of their ``f(b)``. The
decode table the emulator reads holds every integer ``b`` from 2 to the largest measured one (linear
interpolation between measured points, ``f(1) = 1``), extended with a better-fitting form's predictions when
``forms.choose_form`` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from analysis.twin.forms import LINEAR, FormFit

#: The decode table is extended up to this batch size by a chosen non-linear form.
TABLE_MAX_B: Final = 64
#: Requests a run needs at a batch size ``b >= 2`` for its ``f(b)``. A batch size seen in one request alone is
#: where a burst's edge fell, not a batch the engine held: the first request of a burst decodes a step alone,
#: then stalls while the others' prompts are evaluated, and its mean batch rounds to one size below theirs.
MIN_REQUESTS: Final = 2
MEASURED: Final = "measured"
INTERPOLATED: Final = "interpolated"
EXTRAPOLATED: Final = "extrapolated"


@dataclass(frozen=True, slots=True)
class RunSpeeds:
    """One run's decode rows of the fitted target (``decode.decode_requests`` columns)."""

    name: str
    slots: int | None  # configured slots, from run.json
    rows: pd.DataFrame

    def at(self, b: int) -> pd.Series:
        """The speeds of the requests decoded at batch ``b``."""
        return self.rows.loc[self.rows["b"] == b, "speed"]

    @property
    def solo(self) -> float | None:
        """``r(1)``: the median speed of the requests that decoded alone."""
        speeds = self.at(1)
        return float(speeds.median()) if len(speeds) else None

    def slowdown(self) -> dict[int, tuple[float, int]]:
        """``b -> (r(1) / r(b), requests at b)`` for every ``b >= 2`` this run measured in ``MIN_REQUESTS`` or more."""
        solo = self.solo
        if solo is None:
            return {}
        groups = self.rows[self.rows["b"] >= 2].groupby("b")["speed"]
        return {int(b): (solo / float(s.median()), len(s)) for b, s in groups if len(s) >= MIN_REQUESTS}

    def sparse(self) -> dict[int, int]:
        """``b -> requests`` for every ``b >= 2`` seen in fewer than ``MIN_REQUESTS`` requests (left out)."""
        counts = self.rows.loc[self.rows["b"] >= 2, "b"].value_counts()
        return {int(b): int(n) for b, n in sorted(counts.items()) if n < MIN_REQUESTS}


@dataclass(frozen=True, slots=True)
class Point:
    """``f(b)`` combined over the runs that measured ``b`` beside ``b = 1``."""

    b: int
    f: float
    runs: tuple[str, ...]
    requests: int  # requests at b in those runs
    clamped: bool  # the median came out below 1 (faster in company: noise) and was set to 1


@dataclass(frozen=True, slots=True)
class Row:
    """One entry of the decode table."""

    b: int
    f: float
    kind: str  # MEASURED, INTERPOLATED, EXTRAPOLATED
    requests: int = 0  # for measured rows


def measured_points(runs: Sequence[RunSpeeds]) -> list[Point]:
    """The measured ``f(b)``, ``b >= 2``, in order of ``b``."""
    found: dict[int, list[tuple[str, float, int]]] = {}
    for run in runs:
        for b, (f, n) in run.slowdown().items():
            found.setdefault(b, []).append((run.name, f, n))
    points = []
    for b in sorted(found):
        median = float(np.median([f for _, f, _ in found[b]]))
        points.append(Point(b, max(median, 1.0), tuple(name for name, _, _ in found[b]),
                            sum(n for _, _, n in found[b]), clamped=median < 1.0))
    return points


def decode_table(points: Sequence[Point], form: FormFit) -> list[Row]:
    """``f(b)`` for every integer ``b`` from 2 to the largest measured, and on to ``TABLE_MAX_B`` by ``form``
    unless it is the linear form the emulator applies beyond the table anyway."""
    if not points:
        return []
    known_b = [1.0] + [float(p.b) for p in points]
    known_f = [1.0] + [p.f for p in points]
    by_b = {p.b: p for p in points}
    last = points[-1].b
    rows = [
        Row(b, by_b[b].f, MEASURED, by_b[b].requests) if b in by_b
        else Row(b, float(np.interp(b, known_b, known_f)), INTERPOLATED)
        for b in range(2, last + 1)
    ]
    if form.name != LINEAR:
        rows += [Row(b, max(1.0, form.predict(b)), EXTRAPOLATED) for b in range(last + 1, TABLE_MAX_B + 1)]
    return rows
