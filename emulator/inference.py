"""One generation, shared by the native and the OpenAI endpoints: what to say, and saying it on time.

``plan_output`` decides the output (length, thinking, tool calls) from the request and a seeded RNG;
``hold_runner`` and ``generate`` take the request through the scheduler, a parallel slot and the
engine, stamping the moments Ollama's timers are computed from.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.catalog import ModelInfo
from emulator.clock import monotonic
from emulator.engine import Sequence
from emulator.faults import GARBAGE, Fault
from emulator.httpserver import LAST_CHUNK, Connection, chunk
from emulator.presets import Preset
from emulator.prompt import EMPTY, Prompt
from emulator.scheduler import Runner, RunnerOptions, Scheduler
from emulator.text import VOCAB_JSON, detokenize, estimate_tokens, output_tokens


@dataclass(slots=True)
class OutputPlan:
    """What the model will say: visible tokens (thinking first), then hidden tool-call tokens."""

    token_ids: list[int]
    n_think: int
    done_reason: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # native form, arguments as objects
    n_hidden: int = 0  # tokens the model spends writing the tool calls (not streamed as text)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids) + self.n_hidden

    @property
    def thinking(self) -> str:
        return detokenize(self.token_ids[: self.n_think])

    @property
    def content(self) -> str:
        return detokenize(self.token_ids[self.n_think :])


def plan_output(
    rng: random.Random,
    preset: Preset,
    num_predict: int,
    num_ctx: int,
    think: bool,
    tools: list[dict[str, Any]] | None = None,
) -> OutputPlan:
    """The output for one request.

    The model would stop at a natural length drawn from ``[min_output, max_output]``; ``num_predict``
    (or ``10 * num_ctx`` when it is negative) cuts it short with ``done_reason: "length"``. With
    ``tools`` the model calls one of them (unless the call would not fit in the limit).
    """
    natural = rng.randint(preset.min_output, preset.max_output)
    limit = num_predict if num_predict >= 0 else 10 * num_ctx
    n_think = round(preset.think_share * min(natural, limit)) if think else 0
    if tools:
        call = _tool_call(rng, tools)
        call_tokens = estimate_tokens(json.dumps(call["function"]), preset)
        if n_think + call_tokens <= limit:
            return OutputPlan(output_tokens(rng, n_think), n_think, "stop", [call], call_tokens)
    total = min(natural, limit)
    return OutputPlan(output_tokens(rng, total), min(n_think, total), "length" if limit < natural else "stop")


def _tool_call(rng: random.Random, tools: list[dict[str, Any]]) -> dict[str, Any]:
    tool = tools[rng.randrange(len(tools))]
    function = tool.get("function") or {}
    params = (function.get("parameters") or {}).get("properties") or {}
    arguments = {name: _argument(rng, schema or {}) for name, schema in params.items()}
    call_id = "call_" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
    return {"id": call_id, "function": {"index": 0, "name": function.get("name", ""), "arguments": arguments}}


def _argument(rng: random.Random, schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind in ("integer", "number"):
        return rng.randint(1, 100)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return detokenize(output_tokens(rng, 2)).strip()


class ChunkFormat(Protocol):
    """The wire form of one API's streamed chunks (payloads without HTTP chunk framing)."""

    def token(self, created_at: bytes, thinking: bool, token_json: bytes) -> bytes: ...

    def tool_calls(self, created_at: bytes) -> bytes: ...

    def error(self, message: str) -> bytes: ...


MID_STREAM = frozenset({"reset", "error_line", "truncate", "garbage"})  # faults that act on the body


class StreamSequence(Sequence):
    """A streamed generation: each token is one chunk, written straight from the engine's step.

    The HTTP headers go out with the first chunk (as Go's ``c.Stream`` does), so an error before it
    can still carry its own status. A mid-stream fault fires when ``fault.after`` chunks are out.
    """

    __slots__ = ("conn", "fmt", "ids", "n_think", "n_visible", "head", "chunks", "fault", "fault_at", "broken",
                 "t_first_write", "t_last_write")  # fmt: skip

    def __init__(
        self, conn: Connection, head: bytes, fmt: ChunkFormat, plan: OutputPlan, prompt: int, fault: Fault | None
    ):
        super().__init__(prompt, plan.n_tokens)
        self.conn = conn
        self.fmt = fmt
        self.ids = plan.token_ids
        self.n_think = plan.n_think
        self.n_visible = len(plan.token_ids)
        self.head = head
        self.chunks = 0
        self.fault = fault
        self.fault_at = fault.after if fault is not None and fault.kind in MID_STREAM else -1
        self.broken = False
        self.t_first_write = 0.0
        self.t_last_write = 0.0

    def emit(self, created_at: bytes) -> None:
        i = self.emitted
        if i < self.n_visible:
            self.write(self.fmt.token(created_at, i < self.n_think, VOCAB_JSON[self.ids[i]]))
        elif i == self.n_tokens - 1:  # the last hidden token completes the tool calls
            self.write(self.fmt.tool_calls(created_at))

    def write(self, payload: bytes) -> None:
        """Write one chunk (with the headers if it is the first), unless a fault takes its place."""
        if self.chunks == self.fault_at and self._inject():
            return
        self.chunks += 1
        self._out(chunk(payload))

    def finish(self) -> None:
        """End the chunked body."""
        self._out(LAST_CHUNK)
        self.t_last_write = monotonic()

    def _out(self, data: bytes) -> None:
        if self.head:  # the first bytes of the response: headers go with them
            data = self.head + data
            self.head = b""
            self.t_first_write = monotonic()
        self.conn.write(data)

    def _inject(self) -> bool:
        """Apply the fault; True when it replaces the rest of the stream."""
        kind = self.fault.kind  # type: ignore[union-attr]
        self.fault_at = -1
        if kind == "garbage":
            self._out(chunk(GARBAGE))
            return False
        self.broken = True
        self.n_tokens = 0  # the engine drops the sequence after this step
        if kind == "reset":
            self.conn.abort()
            return True
        if kind == "error_line":
            self._out(chunk(self.fmt.error(self.fault.message)))  # type: ignore[union-attr]
        self.finish()  # error_line and truncate: a clean end without the done chunk
        return True


REQUEST_CANCELED = "request canceled"  # Ollama's 499 for a client gone during scheduling or load (log only)
CONTEXT_CANCELED = "context canceled"  # Ollama's 500 for a client gone while waiting for a slot (log only)


@asynccontextmanager
async def hold_runner(
    scheduler: Scheduler, model: ModelInfo, options: RunnerOptions, keep_alive: float | None, stamps: Stamps
) -> AsyncIterator[Runner]:
    """A runner for the request's lifetime (its reference is dropped on exit); stamps ``t_runner``."""
    try:
        runner = await scheduler.get_runner(model, options, keep_alive)
    except asyncio.CancelledError:
        stamps.cancelled = REQUEST_CANCELED
        raise
    stamps.t_runner = monotonic()
    try:
        yield runner
    finally:
        scheduler.release(runner)


async def generate(runner: Runner, seq: Sequence, stamps: Stamps, prompt: Prompt = EMPTY, answer: str = "") -> None:
    """Wait for a slot (FIFO), take the cache slot sharing the longest prefix with ``prompt``, then run ``seq``
    in the engine until its last token, evaluating only the prompt tokens not cached; stamps ``t_slot``. The
    cache slot keeps ``prompt`` and ``answer`` (a sequence cancelled before its prompt was evaluated: what
    it had cached)."""
    try:
        await runner.slots.acquire()
    except asyncio.CancelledError:
        stamps.cancelled = CONTEXT_CANCELED
        raise
    stamps.t_slot = monotonic()
    seq.cache_slot, cached = runner.cache.take(prompt)
    seq.prefill_tokens = seq.prompt_tokens - cached
    held = prompt.first(cached)
    try:
        await runner.engine.submit(seq)  # type: ignore[union-attr]
        held = prompt.answered(answer, runner.cache.preset)
    except asyncio.CancelledError:
        runner.engine.remove(seq)  # type: ignore[union-attr]
        stamps.cancelled = "client disconnected while generating"
        if seq.t_prefill_end:
            held = prompt
        raise
    finally:
        runner.cache.release(seq.cache_slot, held)
        runner.slots.release()


@dataclass(slots=True)
class Stamps:
    """Monotonic moments of one request, from which Ollama's durations and the trace are computed."""

    t_received: float  # the whole request had arrived
    t_start: float = 0.0  # handler entry: Ollama's checkpointStart (after a slow_first_byte fault's delay)
    t_runner: float = 0.0
    t_slot: float = 0.0
    cancelled: str = ""
