"""``LLMUser``: one Locust user is one client of an LLM server; the base of the three kinds.

Each kind (``ChatUser``, ``AgentLoopUser``, ``BatchUser``) runs one session per task (a conversation, an
agent job, a batch) and sends its requests through ``send``, which routes, times, records and reports
each one. A kind is configured by its workload: set on the class from a scenario, or declared by class
attributes in a user's own locustfile (``loadgen.users.declared``). Request bodies and parsing live in
``loadgen.wire.protocol``, the transport in ``loadgen.wire.client``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

import gevent
from locust import User, task
from locust.env import Environment
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from analysis.schema import ErrorClass, LocustEntry, RequestRecord, locust_entry_name
from loadgen.scenario.prompts import Prompt
from loadgen.scenario.workloads import Workload
from loadgen.users.node import Node, node_of, sampling_for
from loadgen.users.replay import ReplayStream
from loadgen.wire.client import RequestCancelled, RequestOutcome, exchange
from loadgen.wire.protocol import Message, Reply, build_chat, build_generate, endpoint_path

#: Seconds a user waits after a connection failed (refused, or lost before any response), so that a
#: dead host is not hammered.
CONNECT_BACKOFF_S = 1.0


class LLMRequestError(Exception):
    """A failed LLM request, as Locust's failure tables show it: ``<error class>: <server message>``."""


class LLMUser(User):
    """Base of the three kinds: one Locust user = one client of the LLM server.

    ``workload`` is the validated workload the class runs: given by a scenario, or built from the
    class's attributes when the run starts. ``kind`` names the workload kind a subclass runs.
    """

    abstract = True
    kind: ClassVar[str]
    workload: ClassVar[Workload]

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.node: Node = node_of(environment)
        self.user_id = self.node.next_user_id()
        self.rng = self.node.user_rng(self.user_id)
        self.api = self.node.api
        # Paced sessions: the turn this user took last, and when its current session was due.
        self.turn = getattr(self.node.pacer, "released", 0)  # a user spawned mid-rounds waits for the next
        self.session_due: float | None = None

    def wait_time(self) -> float:
        return 0.0 if self.node.pacer.paced else self.between_sessions()

    def between_sessions(self) -> float:
        """The wait between two sessions of a closed-loop user."""
        return 0.0

    @task
    def session(self) -> None:
        """One session (a conversation, an agent job or a batch), when the load's pacing allows it."""
        self._state = LOCUST_STATE_WAITING  # nothing in flight while waiting for a turn: a stop ends us
        self.turn, self.session_due = self.node.pacer.wait_turn(self.turn)
        self.stop_if_stopping()
        self._state = LOCUST_STATE_RUNNING
        if isinstance(self.node.pacer, ReplayStream):
            self.replay_request(self.node.pacer, self.turn)
            return
        session_id = self.node.new_session_id(self.user_id)
        try:
            self.run_session(session_id, self.pick_model())
        finally:
            self.node.router.end_session(session_id)
            self.node.pacer_session_done()

    def run_session(self, session_id: str, model: str) -> None:
        """One session of this kind: its requests, through ``send``."""
        raise NotImplementedError

    def replay_request(self, stream: ReplayStream, index: int) -> None:
        """Request ``index`` of a replayed trace, taken when due: sent once the earlier requests of its session
        that it waited for in the recording have ended, with the recorded sizes, as its session's workload."""
        turn = stream.turn(index)
        try:
            self._state = LOCUST_STATE_WAITING
            stream.wait_for_earlier(index)
            self.stop_if_stopping()
            self._state = LOCUST_STATE_RUNNING
            chat = [Message("user", turn.prompt)] if turn.workload.endpoint == "chat" else None
            self.send(turn.session_id, turn.step, turn.model, messages=chat, prompt=turn.prompt,
                      num_predict=turn.num_predict, workload=turn.workload)
        finally:
            if stream.done(index):
                self.node.router.end_session(turn.session_id)

    def next_prompt(self) -> Prompt:
        """The workload's next prompt (a string, or chat messages), from its ``prompts``; override to make
        prompts in code."""
        return self.node.next_prompt(self.workload, self.rng)

    def pick_model(self) -> str:
        models = self.workload.models
        assert models is not None  # a loaded scenario's workloads have theirs
        return models[0] if len(models) == 1 else self.rng.choice(models)

    # -- pacing -------------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Sleep between requests (think time, tool latency); a stopping run ends the user here."""
        self.stop_if_stopping()
        if seconds > 0:
            self._state = LOCUST_STATE_WAITING  # a stop now kills the user at once: nothing is in flight
            gevent.sleep(seconds)
            self.stop_if_stopping()
            self._state = LOCUST_STATE_RUNNING

    def stop_if_stopping(self) -> None:
        """End the session at a clean boundary once the run has asked this user to stop."""
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()

    def stop(self, force: bool = False) -> bool:
        """Stop this user (Locust's ``User.stop``). Locust kills a waiting user, but the kill only lands on
        the event loop's next turn: a user whose wait ended meanwhile (its think time or tool latency due in
        the same turn) would wake, send its next request and have that killed, recorded as ``cancelled``
        though the stop was graceful. So a waiting user is marked stopping first: whichever comes first,
        the kill or its wake-up (``stop_if_stopping`` after every wait), it ends before another request."""
        if not force and self._state == LOCUST_STATE_WAITING:
            self._state = LOCUST_STATE_STOPPING
            assert self._greenlet is not None  # a waiting user runs in its greenlet
            self._group.killone(self._greenlet)
            return True
        return super().stop(force)

    # -- one request --------------------------------------------------------------------------------

    def send(
        self,
        session_id: str,
        step: int,
        model: str,
        messages: list[Message] | None = None,
        prompt: str = "",
        tools: tuple[dict[str, Any], ...] = (),
        num_predict: int | None = None,
        workload: Workload | None = None,
    ) -> Reply | None:
        """Send one request, record it, report it to Locust; the reply, or ``None`` if it failed.
        ``num_predict`` replaces the workload's option for this request; ``workload`` (a replayed trace's)
        replaces the user's own."""
        wl, node = workload or self.workload, self.node
        path = endpoint_path(self.api, wl.endpoint)
        sampling = sampling_for(wl.options, session_id, step)
        if num_predict is not None:
            sampling = replace(sampling, num_predict=num_predict)
        stream = wl.options.stream
        assert stream is not None  # set in every loaded scenario (DEFAULT_OPTIONS)
        lead = wl.prefix.for_session(session_id) if wl.prefix else ""
        if messages is not None and wl.endpoint == "chat":
            body = build_chat(self.api, model, led_by(lead, messages), sampling, stream, tools)
        else:
            text = prompt if messages is None else transcript(messages)
            body = build_generate(self.api, model, f"{lead}\n\n{text}" if lead else text, sampling, stream)
        target = node.router.acquire(session_id, model)
        node.sink.request_started()
        refused = False
        try:
            result = exchange(node.connection(target, wl.options), self.api, wl.endpoint, path, body,
                              f"{session_id}/{step}")
            refused = result.refused
        except RequestCancelled as cancelled:
            self._record(wl, path, session_id, step, model, target.name, sampling.num_predict, stream,
                         cancelled.outcome)
            raise cancelled.cause from None
        finally:
            node.router.release(target, refused=refused)
        self._record(wl, path, session_id, step, model, target.name, sampling.num_predict, stream, result)
        if result.error:
            if result.error is ErrorClass.CONNECT:
                self.sleep(CONNECT_BACKOFF_S)
            return None
        return result.reply

    def _record(
        self,
        wl: Workload,
        path: str,
        session_id: str,
        step: int,
        model: str,
        host: str,
        num_predict: int | None,
        stream: bool,
        ex: RequestOutcome,
    ) -> None:
        reply = ex.reply
        self.node.sink.add(
            RequestRecord(
                run_id=self.node.run_id,
                worker=self.node.worker,
                user_id=self.user_id,
                session_id=session_id,
                step=step,
                workload=wl.name,
                kind=wl.kind,
                host=host,
                api=self.api,
                endpoint=path,
                model=model,
                stream=stream,
                t_scheduled=self._take_due(),
                t_start=ex.t_start,
                t_first_token=ex.t_first_token,
                t_first_thinking=ex.t_first_thinking,
                t_end=ex.t_end,
                status=ex.status,
                error=ex.error,
                error_detail=ex.error_detail,
                prompt_tokens=reply.prompt_tokens,
                cached_tokens=reply.cached_tokens,
                output_tokens=_output_tokens(reply),
                thinking_tokens=reply.thinking_chunks or None,
                tool_calls=len(reply.tool_calls),
                server_total_s=reply.server_total_s,
                server_load_s=reply.server_load_s,
                server_prompt_eval_s=reply.server_prompt_eval_s,
                server_eval_s=reply.server_eval_s,
                num_predict=num_predict,
                done_reason=reply.done_reason,
            )
        )
        if ex.error is ErrorClass.CANCELLED:
            return  # the run stopped it: not the server's failure, and not in Locust's tables
        name = locust_entry_name(wl.name, model, host)
        fire = self.environment.events.request.fire
        exception = LLMRequestError(f"{ex.error}: {ex.error_detail[:120]}") if ex.error else None
        fire(request_type=LocustEntry.E2E, name=name, response_time=(ex.t_end - ex.t_start) * 1000,
             response_length=_output_tokens(reply) or 0, exception=exception, context={})
        if ex.t_first_token is not None and not ex.error:
            fire(request_type=LocustEntry.TTFT, name=name, response_time=(ex.t_first_token - ex.t_start) * 1000,
                 response_length=0, exception=None, context={})

    def _take_due(self) -> float | None:
        """When the session was due, for its first request only (open-loop arrivals)."""
        due, self.session_due = self.session_due, None
        return due

    def report_session(self, entry: LocustEntry, model: str, host: str, started: float, output_tokens: int,
                       failed: bool) -> None:
        """Put a whole agent job or batch into Locust's statistics as its own entry."""
        self.environment.events.request.fire(
            request_type=entry,
            name=locust_entry_name(self.workload.name, model, host),
            response_time=(time.perf_counter() - started) * 1000,
            response_length=output_tokens,
            exception=LLMRequestError(f"{entry.lower()} had failed requests") if failed else None,
            context={},
        )


def as_messages(item: Prompt) -> list[Message]:
    """A prompt item as chat messages: a plain string is one user message."""
    if isinstance(item, str):
        return [Message("user", item)]
    return [Message(m.role, m.content) for m in item]


def led_by(prefix: str, messages: list[Message]) -> list[Message]:
    """``messages`` with a shared ``prefix`` first: in front of the leading system message's text, or as the
    leading system message when there is none."""
    if not prefix:
        return messages
    if messages and messages[0].role == "system":
        return [replace(messages[0], content=f"{prefix}\n\n{messages[0].content}"), *messages[1:]]
    return [Message("system", prefix), *messages]


def transcript(messages: list[Message]) -> str:
    """A conversation as one completion prompt, for workloads that use the generate endpoint."""
    lines = [f"{m.role}: {m.content}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def _output_tokens(reply: Reply) -> int | None:
    # Servers without a usage count (an OpenAI stream without include_usage): count streamed chunks.
    if reply.output_tokens is not None:
        return reply.output_tokens
    chunks = reply.content_chunks + reply.thinking_chunks
    return chunks or None

