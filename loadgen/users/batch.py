"""``BatchUser``: batch jobs: bursts of requests fired at once, long outputs, no think time."""

from __future__ import annotations

import time
from typing import ClassVar

import gevent
from gevent import GreenletExit

from analysis.schema import LocustEntry, WorkloadKind
from loadgen.scenario.prompts import Prompt
from loadgen.scenario.workloads import BatchWorkload
from loadgen.users.base import LLMUser, as_messages
from loadgen.wire.protocol import Message, Reply


class BatchUser(LLMUser):
    """One task fires ``batch_size`` requests at once, waits for all of them and records the batch's wall
    time as its own ``BATCH`` entry; ``pause`` between batches.

    Override ``documents`` to choose what a batch sends.
    """

    abstract = True
    kind: ClassVar[str] = WorkloadKind.BATCH
    workload: ClassVar[BatchWorkload]

    def between_sessions(self) -> float:
        return float(self.workload.pause.sample(self.rng))

    def documents(self) -> list[Prompt]:
        """What one batch sends, one request per item (a string, or chat messages). Default:
        ``batch_size`` prompts of the workload."""
        return [self.next_prompt() for _ in range(self.workload.batch_size)]

    def run_session(self, session_id: str, model: str) -> None:
        documents = self.documents()
        started = time.perf_counter()
        requests = [
            gevent.spawn(self._send_document, session_id, i, model, document) for i, document in enumerate(documents)
        ]
        try:
            gevent.joinall(requests)
        except GreenletExit:
            gevent.killall(requests, block=True)  # each records its request as cancelled
            raise
        replies = [g.value for g in requests]
        output_tokens = sum((r.output_tokens or 0) for r in replies if r is not None)
        host = self.node.router.host_of(session_id)
        self.report_session(LocustEntry.BATCH, model, host, started, output_tokens, None in replies)

    def _send_document(self, session_id: str, index: int, model: str, document: Prompt) -> Reply | None:
        if isinstance(document, str):
            if self.workload.endpoint == "chat":
                return self.send(session_id, index, model, messages=[Message("user", document)])
            return self.send(session_id, index, model, prompt=document)
        return self.send(session_id, index, model, messages=as_messages(document))
