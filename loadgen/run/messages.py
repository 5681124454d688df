"""The custom messages between the master and its workers, named and typed in one place.

Locust delivers custom messages in order per worker, immediately (not on the 3-second stats
report), and through msgpack: payloads are plain dicts, lists, strings and numbers.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

#: master → workers, at the start of every run: what to run and where to report it.
SCENARIO: Final = "llm_scenario"
#: worker → master (and local runner → itself): a batch of finished request records.
RECORDS: Final = "llm_records"
#: master → workers: ship your records now (the end-of-run barrier); answered by a RECORDS batch.
FLUSH: Final = "llm_flush"
#: master → workers: release the next closed round of a concurrency level.
ROUND: Final = "llm_round"
#: master → workers: the open-loop arrival rate from now on (this worker's share).
ARRIVALS: Final = "llm_arrivals"
#: master → workers: start replaying the trace; each node sends its share of the sessions.
REPLAY: Final = "llm_replay"


class ScenarioMessage(TypedDict):
    run_id: str
    scenario: dict[str, Any]  # Scenario.to_payload(): everything a worker needs, prompt data included
    hosts: dict[str, str]  # host name → URL, as resolved by the master (embedded servers started there)
    classes: list[str]  # workloads declared by user classes of the locustfile, which every worker must have


class RecordsMessage(TypedDict):
    run_id: str
    worker: int
    rows: list[list[Any]]  # RequestRecord.to_row() each
    sent: int  # requests this worker has started in this run so far
    in_flight: int  # of those, not yet recorded
    final: bool  # the worker's last batch of the run
    flush_token: int  # the FLUSH request this batch answers, 0 for a periodic batch


class FlushMessage(TypedDict):
    token: int


class RoundMessage(TypedDict):
    round_id: int  # grows with every round of the run
    label: str  # the stage, e.g. c4/r2
    open_all: bool  # the rounds are over (warm-up done): users run freely from now on


class ArrivalsMessage(TypedDict):
    rate: float  # arrivals per second on the receiving node


class ReplayMessage(TypedDict):
    start: float  # epoch seconds: the trace's window start, on every node
    nodes: list[int]  # the nodes taking part (worker indexes): nodes[i] sends the sessions s with s % len(nodes) == i
