"""What every load-generating node (worker or local runner) holds for the run in progress.

Built from the scenario the master sends (or the local runner loaded) when a run starts; the user
classes reach it through ``environment``. It owns the node's router, connection pools and record
sink, and hands out prompts and per-request seeds so that concurrent users draw distinct prompts.
"""

from __future__ import annotations

import itertools
import os
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from locust.env import Environment

from analysis.schema import Api
from loadgen.run.records import RecordSink
from loadgen.scenario.conversations import Conversation, Conversations
from loadgen.scenario.load import Arrivals, Capacity, Probe, Replay, Rounds
from loadgen.scenario.options import Options
from loadgen.scenario.prompts import Prompt
from loadgen.scenario.scenario import Scenario
from loadgen.scenario.workloads import Workload
from loadgen.users.pacing import ArrivalStream, ClosedLoop, Pacer, RoundGate
from loadgen.users.replay import ReplayStream
from loadgen.wire.client import HostConnection
from loadgen.wire.protocol import Sampling
from loadgen.wire.routing import Policy, Router, Target

ATTRIBUTE = "llm_node"


@dataclass
class Node:
    """The run as one node sees it."""

    run_id: str
    worker: int
    scenario: Scenario
    router: Router
    sink: RecordSink
    pacer: Pacer = field(default_factory=ClosedLoop)
    api_keys: dict[str, str] = field(default_factory=dict)  # host name → bearer token, from this node's env
    _connections: dict[tuple[str, float, float], HostConnection] = field(default_factory=dict)
    _prompt_cursors: dict[str, Iterator[int]] = field(default_factory=dict)
    _user_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _session_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api(self) -> Api:
        return Api(self.scenario.api)

    def next_user_id(self) -> int:
        return next(self._user_ids)

    def new_session_id(self, user_id: int) -> str:
        """A session id unique within the run: ``<worker>-<user>-<n>``."""
        return f"{self.worker}-{user_id}-{next(self._session_ids)}"

    def user_rng(self, user_id: int) -> random.Random:
        """A user's own random stream, reproducible from the run, node and user."""
        return random.Random(zlib.crc32(f"{self.run_id}:{self.worker}:{user_id}".encode()))

    def next_prompt(self, workload: Workload, rng: random.Random) -> Prompt:
        """The workload's next prompt: cycled in order across this node's users, or drawn at random."""
        return workload.prompts.pick(self._next_draw(workload.name), rng)

    def next_conversation(self, workload: str, conversations: Conversations) -> Conversation:
        """The workload's next dataset conversation, cycled in order across this node's users."""
        return conversations.pick(self._next_draw(workload))

    def _next_draw(self, workload: str) -> int:
        cursor = self._prompt_cursors.get(workload)
        if cursor is None:
            # Workers start at different offsets so that a distributed run cycles through every prompt.
            cursor = self._prompt_cursors[workload] = itertools.count(self.worker * 7919)
        return next(cursor)

    def connection(self, target: Target, options: Options) -> HostConnection:
        """The keep-alive pool to ``target`` with the workload's timeouts."""
        assert options.connect_timeout is not None and options.timeout is not None  # DEFAULT_OPTIONS sets both
        key = (target.name, options.connect_timeout, options.timeout)
        conn = self._connections.get(key)
        if conn is None:
            conn = self._connections[key] = HostConnection(target.url, options.connect_timeout, options.timeout,
                                                           self.api_keys.get(target.name, ""))
        return conn

    def pacer_session_done(self) -> None:
        """A paced session ended: in closed rounds ship its records now, so the next round starts sooner."""
        if isinstance(self.pacer, RoundGate):
            self.sink.flush()

    def close(self) -> None:
        self.pacer.close()
        self.sink.close()
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def sampling_for(options: Options, session_id: str, step: int) -> Sampling:
    """The request options for one request; ``seed: per_request`` gives each request its own seed."""
    seed = options.seed
    if seed == "per_request":
        seed = zlib.crc32(f"{session_id}:{step}".encode()) & 0x7FFFFFFF
    return Sampling(
        num_predict=options.num_predict,
        temperature=options.temperature,
        seed=seed,
        num_ctx=options.num_ctx,
        keep_alive=options.keep_alive.wire if options.keep_alive is not None else None,
        think=options.think,
        extra=options.extra,
    )


def api_keys(scenario: Scenario, override: str = "") -> dict[str, str]:
    """Host name → bearer token, read from this process's environment: each host's ``api_key_env``, or
    ``override`` (``--api-key`` / ``LOCUST_LLM_API_KEY``) for every host."""
    if override:
        return {h.name: override for h in scenario.hosts}
    return {h.name: key for h in scenario.hosts if h.api_key_env and (key := os.environ.get(h.api_key_env))}


def build_node(
    environment: Environment,
    run_id: str,
    scenario: Scenario,
    host_urls: dict[str, str],
    send: Callable[[Any], None],
    api_key: str = "",
) -> Node:
    """The node for a new run; ``host_urls`` are the URLs the master resolved (embedded servers),
    ``api_key`` the node's own ``--api-key``."""
    runner = environment.runner
    worker = getattr(runner, "worker_index", 0) or 0
    targets = [
        Target(h.name, host_urls[h.name], weight=h.weight, models=frozenset(h.models) if h.models else None)
        for h in scenario.hosts
    ]
    seed = zlib.crc32(f"{run_id}:{worker}".encode())
    return Node(
        run_id=run_id,
        worker=worker,
        scenario=scenario,
        router=Router(targets, Policy(scenario.routing), random.Random(seed)),
        sink=RecordSink(send, run_id, worker),
        pacer=pacer_for(scenario, random.Random(seed + 1), worker),
        api_keys=api_keys(scenario, api_key),
    )


def pacer_for(scenario: Scenario, rng: random.Random, worker: int) -> Pacer:
    """How the scenario's load paces sessions on node ``worker``."""
    load = scenario.load
    if isinstance(load, Replay):
        return ReplayStream(load, scenario.workloads, worker)
    if isinstance(load, (Rounds, Probe)) or load.warmup:
        return RoundGate()
    if isinstance(load, Arrivals) or (isinstance(load, Capacity) and load.by_rate):
        return ArrivalStream(load.process, rng)
    return ClosedLoop()


def node_of(environment: Environment) -> Node:
    """The node's state for the run in progress."""
    node = getattr(environment, ATTRIBUTE, None)
    if node is None:
        raise RuntimeError("no run in progress on this node")
    return node
