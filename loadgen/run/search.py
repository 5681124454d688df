"""Where the next capacity probe goes: up by a factor until one fails, then bisect (pure: no Locust, no I/O).

Levels are users (whole numbers, bisected down to one user) or arrival rates (bisected down to
``precision`` requests/s). The search is over when the last pass and the first fail are that close,
when the bound passed (capacity is at least the bound), or when the first level failed below which
there is nothing left to try.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["found", "bound", "none", "time"]


@dataclass
class CapacitySearch:
    start: float
    bound: float
    growth: float = 2.0
    precision: float = 1.0  # users: 1; rates: requests/s
    whole: bool = True  # levels are user counts
    last_pass: float | None = None
    first_fail: float | None = None
    tried: list[tuple[float, bool]] = field(default_factory=list)

    def record(self, level: float, passed: bool) -> None:
        """A probe's verdict at ``level``."""
        self.tried.append((level, passed))
        if passed:
            self.last_pass = max(level, self.last_pass or level)
        else:
            self.first_fail = min(level, self.first_fail or level)

    def next_level(self) -> float | None:
        """The next level to probe, or None when the search is over."""
        if not self.tried:
            return self.start
        if self.first_fail is None:
            assert self.last_pass is not None
            if self.last_pass >= self.bound:
                return None
            up = self.last_pass * self.growth
            return min(self.bound, max(self.last_pass + 1, math.ceil(up)) if self.whole else up)
        floor = self.last_pass if self.last_pass is not None else (0.0 if self.whole else None)
        if floor is None:  # every rate failed, the first one included: halve until one passes
            return None if self.first_fail / 2 < self.precision else self.first_fail / 2
        if self.first_fail - floor <= self.precision:
            return None
        middle = (floor + self.first_fail) / 2
        return float(math.floor(middle)) if self.whole else middle

    @property
    def outcome(self) -> Outcome:
        """How the search ended (``time`` is for the caller to say)."""
        if self.first_fail is None:
            return "bound"
        return "found" if self.last_pass is not None else "none"
