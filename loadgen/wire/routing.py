"""Which host serves a request: routing policies across a scenario's hosts, per load-generating node.

- ``sticky`` (default): a session (chat conversation, agent job, batch) is bound to one host for its
  whole life, as a real client would for prompt-cache reuse; new sessions are spread by smooth
  weighted round-robin.
- ``round_robin``: every request goes to the next host in turn (smooth weighted round-robin with
  equal weights).
- ``weighted``: every request picks a host at random in proportion to its weight.
- ``least_in_flight``: every request goes to the host with the fewest requests in flight from this
  node, relative to its weight; a faster host finishes sooner and so gets more.

A host that refuses connections is marked down and skipped until ``retry_after`` seconds have passed
(doubling while it keeps refusing); a session bound to it moves to another host. When every host
serving a model is down, the one due back first is tried anyway so the failures stay on record.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

#: First back-off for a host that refused a connection, and its ceiling.
RETRY_AFTER_S: Final = 2.0
MAX_RETRY_AFTER_S: Final = 30.0


class Policy(StrEnum):
    STICKY = "sticky"
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_IN_FLIGHT = "least_in_flight"


@dataclass(eq=False, slots=True)
class Target:
    """One host as the router sees it."""

    name: str
    url: str
    weight: float = 1.0
    models: frozenset[str] | None = None  # None: serves every model
    in_flight: int = 0
    down_until: float = 0.0
    backoff_s: float = RETRY_AFTER_S
    _rr_credit: float = field(default=0.0, repr=False)

    def serves(self, model: str) -> bool:
        return self.models is None or model in self.models


class Router:
    """Picks a host for each request on one node and keeps the per-host in-flight counts."""

    def __init__(
        self,
        targets: Iterable[Target],
        policy: Policy = Policy.STICKY,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.targets = list(targets)
        if not self.targets:
            raise ValueError("a router needs at least one host")
        self.policy = policy
        self._rng = rng or random.Random()
        self._clock = clock
        self._sessions: dict[str, Target] = {}  # sticky bindings
        self._last: dict[str, Target] = {}  # every open session's latest host

    def acquire(self, session_id: str, model: str) -> Target:
        """The host for the next request of ``session_id``; counted in flight until ``release``."""
        if self.policy is Policy.STICKY:
            target = self._sessions.get(session_id)
            if target is None or not self._is_up(target) or not target.serves(model):
                target = self._sessions[session_id] = self._pick(model, self._smooth_round_robin)
        elif self.policy is Policy.ROUND_ROBIN:
            target = self._pick(model, lambda c: self._smooth_round_robin(c, weighted=False))
        elif self.policy is Policy.WEIGHTED:
            target = self._pick(model, self._weighted_random)
        else:
            target = self._pick(model, self._least_in_flight)
        target.in_flight += 1
        self._last[session_id] = target
        return target

    def release(self, target: Target, refused: bool = False) -> None:
        """The request on ``target`` ended; ``refused`` marks the host down for a while."""
        target.in_flight -= 1
        if refused:
            target.down_until = self._clock() + target.backoff_s
            target.backoff_s = min(target.backoff_s * 2, MAX_RETRY_AFTER_S)
        else:
            target.backoff_s = RETRY_AFTER_S

    def host_of(self, session_id: str) -> str:
        """The name of the host that served the session's latest request ("" before its first)."""
        target = self._last.get(session_id)
        return target.name if target else ""

    def end_session(self, session_id: str) -> None:
        """Forget a finished session."""
        self._sessions.pop(session_id, None)
        self._last.pop(session_id, None)

    def _is_up(self, target: Target) -> bool:
        return target.down_until <= self._clock()

    def _pick(self, model: str, choose: Callable[[list[Target]], Target]) -> Target:
        candidates = [t for t in self.targets if t.serves(model)]
        if not candidates:
            raise LookupError(f"no host serves model {model!r}")
        up = [t for t in candidates if self._is_up(t)]
        if not up:
            return min(candidates, key=lambda t: t.down_until)
        return up[0] if len(up) == 1 else choose(up)

    @staticmethod
    def _smooth_round_robin(candidates: list[Target], weighted: bool = True) -> Target:
        # nginx's smooth weighted round-robin: deterministic, and interleaves rather than bursts.
        total = 0.0
        for t in candidates:
            weight = t.weight if weighted else 1.0
            t._rr_credit += weight
            total += weight
        best = max(candidates, key=lambda t: t._rr_credit)
        best._rr_credit -= total
        return best

    def _weighted_random(self, candidates: list[Target]) -> Target:
        return self._rng.choices(candidates, weights=[t.weight for t in candidates])[0]

    @staticmethod
    def _least_in_flight(candidates: list[Target]) -> Target:
        return min(candidates, key=lambda t: (t.in_flight + 1) / t.weight)
