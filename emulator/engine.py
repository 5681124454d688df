"""A runner's decode engine: continuous batching in lockstep, on absolute deadlines.

One loop per loaded model. Each step, every sequence that is decoding emits one token, and sequences
that were waiting when the previous step ended have their prompt evaluated (less its cached prefix); the
step lasts ``decode_step_s(b) + sum(prefill_s(prefill_tokens))`` (with jitter), so a joining prompt stalls
the batch for its prefill the way a llama.cpp batch does. The next step starts at the previous step's
deadline, not when the loop got round to it, so lag never accumulates into drift.

Every timestamp a sequence records is read from the real monotonic clock when a step actually ends
(the loop wakes); a prefill starts when the previous step ended. The modelled durations are kept
beside the measured ones so the two can be compared (``--trace-file``).
"""

from __future__ import annotations

import asyncio

from emulator.clock import monotonic, now_rfc3339
from emulator.throughput import Throughput


class Sequence:
    """One request's generation. Subclasses write each token in ``emit``; the engine counts them."""

    __slots__ = (
        "prompt_tokens",
        "prefill_tokens",
        "cache_slot",
        "n_tokens",
        "emitted",
        "done",
        "t_submit",
        "t_prefill_start",
        "t_prefill_end",
        "t_last",
        "model_prefill_s",
        "model_decode_s",
        "_model_clock_start",
    )

    def __init__(self, prompt_tokens: int, n_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.prefill_tokens = prompt_tokens  # what is evaluated: the prompt less what its slot had cached
        self.cache_slot = -1  # the runner's slot that evaluated it
        self.n_tokens = n_tokens  # tokens to generate; set to 0 to stop early
        self.emitted = 0
        self.done: asyncio.Future[None] | None = None
        self.t_submit = 0.0
        self.t_prefill_start = 0.0
        self.t_prefill_end = 0.0
        self.t_last = 0.0
        self.model_prefill_s = 0.0
        self.model_decode_s = 0.0
        self._model_clock_start = 0.0

    def emit(self, created_at: bytes) -> None:
        """Write token number ``self.emitted``; ``created_at`` is the step's RFC3339Nano timestamp."""

    @property
    def prompt_eval_s(self) -> float:
        """Measured prefill: the end of the step before to the end of the step that evaluated the prompt."""
        return self.t_prefill_end - self.t_prefill_start

    @property
    def eval_s(self) -> float:
        """Measured decode: end of prefill to the step that emitted the last token."""
        return self.t_last - self.t_prefill_end if self.emitted else 0.0


class Engine:
    """The lockstep decode loop of one runner."""

    def __init__(self, throughput: Throughput) -> None:
        self._tp = throughput
        self.active: list[Sequence] = []  # decoding
        self._joining: list[Sequence] = []  # waiting for the next step
        self._prefilling: list[Sequence] = []  # in the current step's prefill
        self._wake: asyncio.Future[None] | None = None
        self._model_clock = 0.0  # sum of modelled step durations
        self.steps = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def sequences(self) -> int:
        """Sequences in the engine: decoding, evaluating their prompt, or about to."""
        return len(self.active) + len(self._joining) + len(self._prefilling)

    def submit(self, seq: Sequence) -> asyncio.Future[None]:
        """Add ``seq`` at the next step; the returned future resolves when its last token is out."""
        seq.done = asyncio.get_running_loop().create_future()
        seq.t_submit = monotonic()
        self._joining.append(seq)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return seq.done

    def remove(self, seq: Sequence) -> None:
        """Take ``seq`` out at once (its client went away); the batch shrinks from the next step."""
        for group in (self.active, self._joining, self._prefilling):
            if seq in group:
                group.remove(seq)
                return

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tp = self._tp
        step_start = last_end = 0.0  # the current step's scheduled start; when the previous step really ended
        while True:
            if not self.active and not self._joining:
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
            if not self.active:  # nothing decoding: a step starts now, for everyone waiting
                step_start = last_end = loop.time()
            # a sequence joins the step if it was waiting when the previous step ended; one that arrived
            # while that step's tokens were being written waits for the next step, as in a real batch loop
            waiting = self._joining
            joiners = self._prefilling = [s for s in waiting if s.t_submit <= last_end]
            self._joining = [s for s in waiting if s.t_submit > last_end]
            for seq in joiners:
                seq.t_prefill_start = last_end
            step_s = tp.jittered(
                tp.decode_step_s(len(self.active)) + sum(tp.prefill_s(s.prefill_tokens) for s in joiners)
            )
            deadline = step_start + step_s
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            last_end = monotonic()
            self._model_clock += step_s
            self.steps += 1
            self._emit_step(last_end, step_s)
            step_start = deadline

    def _emit_step(self, now: float, step_s: float) -> None:
        created_at = now_rfc3339().encode()
        finished = False
        for seq in self.active:
            seq.emit(created_at)
            seq.emitted += 1
            if seq.emitted >= seq.n_tokens:
                finished = True
        for seq in self._prefilling:  # joiners still present: a cancelled one was removed
            seq.t_prefill_end = now
            seq.model_prefill_s = step_s
            seq._model_clock_start = self._model_clock
            self.active.append(seq)
            finished = finished or seq.n_tokens <= 0
        self._prefilling = []
        if finished:
            still = []
            for seq in self.active:
                if seq.emitted < seq.n_tokens:
                    still.append(seq)
                    continue
                seq.t_last = now
                seq.model_decode_s = self._model_clock - seq._model_clock_start
                if seq.done is not None and not seq.done.done():
                    seq.done.set_result(None)
            self.active = still
