"""When a user starts its next session: closed loop, closed rounds, or open-loop arrivals.

- ``ClosedLoop``: as soon as its last session (and its wait time) ended — Locust's own model.
- ``RoundGate``: closed rounds (``load.shape: rounds`` and the queue probe). The master releases
  round after round; every user runs exactly one session per released round, so each round fires
  exactly as many sessions as there are users, all at once, and the next round waits for them all.
- ``ArrivalStream``: open loop (``load.shape: arrivals``). This node draws arrival times (Poisson or
  evenly spaced) at its share of the stage's rate, independent of response times; an idle user takes
  the next arrival. When every user is busy the arrival waits, and the gap between its due time
  (``t_scheduled``) and its real start is recorded: coordinated omission made visible.

A user blocked here is in Locust's waiting state, so stopping it ends it at once.
"""

from __future__ import annotations

import random
import time
from typing import Protocol

import gevent
from gevent.event import Event
from gevent.queue import Queue


class Pacer(Protocol):
    @property
    def paced(self) -> bool: ...  # sessions start on the pacer's signal (no wait time between them)

    def wait_turn(self, seen: int) -> tuple[int, float | None]:
        """Block until the user's next session may start. ``seen`` is the last turn the user took;
        returns the turn it takes now and when the session was due (epoch seconds), if the pacer says."""
        ...

    def close(self) -> None: ...


class ClosedLoop:
    """Every user runs sessions back to back (with the workload's own wait time between them)."""

    paced = False

    def wait_turn(self, seen: int) -> tuple[int, float | None]:
        return seen + 1, None

    def close(self) -> None:
        pass


class RoundGate:
    """Closed rounds: sessions start only when the master releases a round, one per user per round.
    Once ``opened`` (after warm-up rounds, for a closed-loop load) users run freely."""

    def __init__(self) -> None:
        self.released = 0
        self.opened = False
        self._event = Event()

    @property
    def paced(self) -> bool:
        return not self.opened

    def release(self, round_id: int, open_all: bool = False) -> None:
        """Open round ``round_id`` (ids only grow) to every user that has not taken it; ``open_all``
        ends the gating altogether."""
        if round_id > self.released:
            self.released = round_id
            self.opened = self.opened or open_all
            event, self._event = self._event, Event()
            event.set()

    def wait_turn(self, seen: int) -> tuple[int, float | None]:
        while self.released <= seen and not self.opened:
            self._event.wait()
        return max(self.released, seen + 1), None

    def close(self) -> None:
        self.opened = True
        self._event.set()


class ArrivalStream:
    """Open-loop arrivals at a rate the master sets; idle users take them in order."""

    paced = True

    def __init__(self, process: str, rng: random.Random) -> None:
        self._process = process
        self._rng = rng
        self._due: Queue[float] = Queue()
        self._generator: gevent.Greenlet | None = None
        self._count = 0

    def set_rate(self, per_second: float) -> None:
        """Arrivals from now on come at ``per_second`` (0 stops them)."""
        if self._generator is not None:
            self._generator.kill()
            self._generator = None
        if per_second > 0:
            self._generator = gevent.spawn(self._arrive, per_second)

    def _arrive(self, per_second: float) -> None:
        due = time.time()
        while True:
            gap = self._rng.expovariate(per_second) if self._process == "poisson" else 1.0 / per_second
            due += gap
            gevent.sleep(max(0.0, due - time.time()))
            self._due.put(due)

    def wait_turn(self, seen: int) -> tuple[int, float | None]:
        due = self._due.get()
        self._count += 1
        return self._count, due

    def close(self) -> None:
        self.set_rate(0)
