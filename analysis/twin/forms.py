"""Candidate forms of the decode slowdown ``f(b) = r(1) / r(b)`` and the choice between them.

Every form passes through ``f(1) = 1`` and is fitted by least squares on the measured ``f(b)``, ``b >= 2``:

- ``linear``: ``1 + c*(b - 1)``, the emulator's own form (``contention``), closed form;
- ``power``: ``b**alpha``;
- ``shifted_power``: ``1 + c*(b - 1)**beta`` (``beta = 1`` is linear); ``c`` in closed form for each ``beta``.

A form other than linear is chosen only when it has a measured point to spare beyond its parameters (a
form with as many parameters as points fits them exactly and proves nothing), linear's misfit is above
measurement noise, and the form at least halves it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

LINEAR: Final = "linear"
POWER: Final = "power"
SHIFTED_POWER: Final = "shifted_power"
FORMULAS: Final = {LINEAR: "1 + c*(b-1)", POWER: "b**alpha", SHIFTED_POWER: "1 + c*(b-1)**beta"}

#: Linear's rms misfit (in units of f) below which it is within the run-to-run noise of measured speeds
#: (a few percent): no other form can be shown to be better.
NOISE_RMS: Final = 0.02
#: Another form must bring the rms misfit to at most this share of linear's to replace it.
IMPROVEMENT: Final = 0.5
#: Search ranges of the exponents: from flat to far steeper than any engine slows down.
EXPONENT_RANGE: Final = (0.0, 4.0)
_TOLERANCE: Final = 1e-10


@dataclass(frozen=True, slots=True)
class FormFit:
    """One form fitted to the measured points."""

    name: str
    params: dict[str, float]
    rms: float  # root mean square of predicted - measured f over the measured points
    judged: bool  # it had more points than parameters, so its misfit means something

    @property
    def formula(self) -> str:
        return FORMULAS[self.name]

    def predict(self, b: float) -> float:
        """``f(b)`` by this form."""
        p = self.params
        if self.name == LINEAR:
            return 1 + p["c"] * (b - 1)
        if self.name == POWER:
            return float(b ** p["alpha"])
        return 1 + p["c"] * float((b - 1) ** p["beta"])

    def describe(self) -> str:
        """The form with its fitted parameters, e.g. ``b**alpha, alpha = 0.5``."""
        values = ", ".join(f"{k} = {v:.4g}" for k, v in self.params.items())
        return f"{self.formula}, {values}"


def fit_forms(points: Sequence[tuple[int, float]]) -> list[FormFit]:
    """Fit every form to ``points`` (b, f) with ``b >= 2``; linear first."""
    b = np.array([p[0] for p in points], dtype=float)
    f = np.array([p[1] for p in points], dtype=float)
    x, y = b - 1, f - 1
    n = len(points)

    def rms(predicted: np.ndarray) -> float:
        return math.sqrt(float(np.mean((predicted - f) ** 2)))

    c = float(np.sum(x * y) / np.sum(x * x))
    alpha = _golden(lambda a: float(np.sum((b**a - f) ** 2)), *EXPONENT_RANGE)

    def c_of(beta: float) -> float:
        xb = x**beta
        return float(np.sum(xb * y) / np.sum(xb * xb))

    beta = _golden(lambda e: float(np.sum((1 + c_of(e) * x**e - f) ** 2)), *EXPONENT_RANGE)
    return [
        FormFit(LINEAR, {"c": c}, rms(1 + c * x), judged=n > 1),
        FormFit(POWER, {"alpha": alpha}, rms(b**alpha), judged=n > 1),
        FormFit(SHIFTED_POWER, {"c": c_of(beta), "beta": beta}, rms(1 + c_of(beta) * x**beta), judged=n > 2),
    ]


def choose_form(fits: Sequence[FormFit]) -> tuple[FormFit, str]:
    """The form to extend the decode table with, and why (``fits`` from ``fit_forms``)."""
    linear = fits[0]
    judged = [f for f in fits[1:] if f.judged]
    if not judged:
        return linear, ("linear kept: one measured batch size, which every form fits exactly; measure more "
                        "batch sizes to compare forms")
    if linear.rms < NOISE_RMS:
        return linear, f"linear kept: its rms misfit {linear.rms:.4f} is within measurement noise (< {NOISE_RMS})"
    best = min(judged, key=lambda f: f.rms)
    if best.rms > IMPROVEMENT * linear.rms:
        return linear, (f"linear kept: no form has at most {IMPROVEMENT:g}x its rms misfit {linear.rms:.3g} "
                        f"(best: {best.name} {best.rms:.3g})")
    return best, f"{best.name} chosen: rms misfit {best.rms:.4f} against linear's {linear.rms:.4f}"


def _golden(loss: Callable[[float], float], lo: float, hi: float) -> float:
    """The minimum of a unimodal ``loss`` on ``[lo, hi]`` by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > _TOLERANCE:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return (a + b) / 2
