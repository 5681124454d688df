"""Replaying a trace on one node (``load: {shape: replay}``): the node's share of the trace's sessions,
each request handed to an idle user when it is due.

The master sends every node the same start time and the list of nodes taking part (``REPLAY``); a node
takes the sessions whose index modulo the number of nodes is its place in that list, so every request is
sent by exactly one node, and a session's requests by the same node, in order, to the same host (sticky
routing binds the session until its last request ends). A request that in the recording waited for the
earlier requests of its session waits for them again; one that finds every user busy waits for one, and
its lag shows as ``t_start - t_scheduled``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import gevent
from gevent.event import Event
from gevent.queue import Queue

from loadgen.scenario.load import Replay
from loadgen.scenario.traces.schedule import share
from loadgen.scenario.traces.text import prompt_text
from loadgen.scenario.workloads import Workload


@dataclass(frozen=True, slots=True)
class ReplayTurn:
    """One request of the trace as a user sends it."""

    session_id: str
    step: int
    workload: Workload  # the scenario's workload of the recorded name, else its first
    model: str  # the recorded model where the workload has it, else one of the workload's
    num_predict: int  # the recorded output size (at least 1: 0 means "no limit" to some servers)
    prompt: str  # synthetic text of the recorded input size


class ReplayStream:
    """The node's share of a replay: due requests in time order, for idle users to take."""

    paced = True

    def __init__(self, load: Replay, workloads: Sequence[Workload], worker: int) -> None:
        self._load = load
        self._workloads = {workload.name: workload for workload in workloads}
        self._default = workloads[0]
        self._worker = worker
        self._due: Queue[tuple[int, float]] = Queue()
        self._feeder: gevent.Greenlet | None = None
        self._open: dict[int, set[int]] = {}  # session -> its requests taken and not yet done
        self._left: dict[int, int] = {}  # session -> its requests not yet done
        self._changed: dict[int, Event] = {}  # session -> set when one of its requests is done

    def start(self, at: float, nodes: Sequence[int]) -> None:
        """Send this node's share from epoch time ``at``; ``nodes`` are the indexes of every node taking part."""
        if self._feeder is not None or self._worker not in nodes:
            return
        mine = share(self._load.requests, nodes.index(self._worker), len(nodes))
        for index in mine:
            session = self._load.requests[index].session
            self._left[session] = self._left.get(session, 0) + 1
        self._feeder = gevent.spawn(self._feed, at, mine)

    def _feed(self, at: float, mine: list[int]) -> None:
        for index in mine:
            due = at + self._load.due(index)
            gevent.sleep(max(0.0, due - time.time()))
            self._due.put((index, due))

    def wait_turn(self, seen: int) -> tuple[int, float | None]:
        """Block until a request is due; its index in the schedule and when it was due."""
        index, due = self._due.get()
        self._open.setdefault(self._load.requests[index].session, set()).add(index)
        return index, due

    def turn(self, index: int) -> ReplayTurn:
        """What the user sends for request ``index``."""
        request = self._load.requests[index]
        session = self._load.sessions[request.session]
        workload = self._workloads.get(session.workload, self._default)
        models = workload.models
        assert models  # a loaded scenario's workloads have theirs
        model = session.model if session.model in models else models[request.session % len(models)]
        return ReplayTurn(f"{self._worker}-{session.key}", request.step, workload, model,
                          max(1, request.output_tokens), prompt_text(session.key, request.blocks, request.input_tokens))

    def wait_for_earlier(self, index: int) -> None:
        """Block until the earlier requests of its session have ended, if it waited for them when recorded."""
        request = self._load.requests[index]
        session = request.session
        while request.after and any(other < index for other in self._open[session]):
            self._changed.setdefault(session, Event()).wait()

    def done(self, index: int) -> bool:
        """Request ``index`` ended (or was given up); whether it was its session's last on this node."""
        session = self._load.requests[index].session
        self._open[session].discard(index)
        changed = self._changed.pop(session, None)
        if changed is not None:
            changed.set()
        self._left[session] -= 1
        return not self._left[session]

    def close(self) -> None:
        if self._feeder is not None:
            self._feeder.kill()
            self._feeder = None
