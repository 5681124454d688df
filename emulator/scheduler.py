"""Ollama's scheduler (``server/sched.go``): runners, the bounded pending queue, loads, keep-alive, eviction.

- A request for a loaded model whose load-time options match takes the fast path (v0.11.5+): it never
  enters the pending queue, though it waits while that runner is still loading.
- Everything else goes into the pending queue (capacity ``max_queue``, non-blocking put: past it,
  ``SchedulerBusy``), drained FIFO by one task. That task blocks while it evicts a runner (waiting for
  the victim's in-flight requests, then its unload) and during a load's pre-flight (``fit_s``); the
  load itself then runs beside it with the runner already registered.
- A runner's keep-alive timer starts when its last request ends; ``keep_alive`` 0 unloads then.
- The eviction victim is the first idle runner by shortest keep-alive then name, else the first.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from emulator.catalog import ModelInfo
from emulator.clock import monotonic, to_epoch
from emulator.config import Config
from emulator.engine import Engine
from emulator.presets import Preset
from emulator.prompt_cache import PromptCache
from emulator.slots import FifoSlots
from emulator.text import stable_seed
from emulator.throughput import Throughput

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
_GO_MAX_DURATION_S = (2**63 - 1) / 1e9  # what a negative keep-alive becomes: ~292 years


class SchedulerBusy(Exception):
    """The pending queue is full (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__(BUSY_MESSAGE)


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """Load-time settings: a request whose settings differ forces a reload (``needsReload``)."""

    num_ctx: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0
    shift: bool = True

    def matches(self, wanted: RunnerOptions) -> bool:
        """True when a runner loaded with these settings can serve ``wanted`` (num_gpu -1 matches any)."""
        if wanted.num_gpu < 0:
            wanted = replace(wanted, num_gpu=self.num_gpu)
        if wanted.use_mmap is None:
            wanted = replace(wanted, use_mmap=self.use_mmap)
        return self == wanted


class Runner:
    """A loaded (or loading) model: its slots and their prompt cache, its engine, its reference count and
    keep-alive."""

    def __init__(self, model: ModelInfo, options: RunnerOptions, num_parallel: int, tp: Throughput, session_s: float,
                 cache: PromptCache):
        self.model = model
        self.options = options
        self.num_parallel = num_parallel
        self.throughput = tp
        self.slots = FifoSlots(num_parallel)
        self.cache = cache
        self.engine: Engine | None = None
        self.session_s = session_s
        self.ref_count = 0
        self.expires_at: float | None = None  # epoch seconds; None until it first goes idle
        self.unloading = False
        self._loaded = asyncio.get_running_loop().create_future()  # True when ready, False when aborted
        self.unloaded = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def loading(self) -> bool:
        return not self._loaded.done()

    async def wait_ready(self) -> bool:
        """Wait while the runner loads (Ollama blocks on its ``refMu``); False when the load was aborted."""
        return await asyncio.shield(self._loaded)

    def expires_at_or_estimate(self) -> float:
        """``expires_at`` as ``/api/ps`` reports it: estimated from the keep-alive until it is first set."""
        if self.expires_at is not None:
            return self.expires_at
        return to_epoch(monotonic()) + _session_horizon(self.session_s)

    def set_loaded(self, ok: bool) -> None:
        """The load finished (``ok``) or was aborted; whoever waits in ``wait_ready`` learns which."""
        self._loaded.set_result(ok)

    def start_timer(self, seconds: float, expire: Callable[[Runner], None]) -> None:
        """Call ``expire(self)`` after ``seconds`` unless ``cancel_timer`` comes first."""
        self.cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(seconds, expire, self)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _session_horizon(session_s: float) -> float:
    return _GO_MAX_DURATION_S if math.isinf(session_s) else session_s


@dataclass(slots=True)
class _Pending:
    model: ModelInfo
    options: RunnerOptions
    keep_alive: float | None
    future: asyncio.Future[Runner]
    gone: asyncio.Future[None]  # resolved when the requester is cancelled


class Scheduler:
    """All runners and the pending queue."""

    def __init__(self, config: Config, preset: Preset) -> None:
        self._config = config
        self._preset = preset
        self.runners: dict[str, Runner] = {}
        self.load_counts: Counter[str] = Counter()
        self._pending: deque[_Pending] = deque()
        self._pending_ready = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._process_pending())

    def pending_for(self, name: str) -> int:
        """Requests for ``name`` in the pending queue."""
        return sum(1 for p in self._pending if p.model.name == name)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def get_runner(self, model: ModelInfo, options: RunnerOptions, keep_alive: float | None) -> Runner:
        """A runner for ``model`` with a reference held for the caller; release it with ``release``.

        Raises ``SchedulerBusy`` when the pending queue is full. If the request that triggered a load
        goes away, the load is aborted and requests waiting for that runner schedule again.
        """
        runner = self.runners.get(model.name)
        if runner is not None and not runner.unloading:
            if await runner.wait_ready() and not runner.unloading and runner.options.matches(options):
                self._use(runner, keep_alive)
                return runner
        if len(self._pending) >= self._config.max_queue:
            raise SchedulerBusy()
        loop = asyncio.get_running_loop()
        pending = _Pending(model, options, keep_alive, loop.create_future(), loop.create_future())
        self._pending.append(pending)
        self._pending_ready.set()
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            pending.gone.set_result(None)
            if pending in self._pending:
                self._pending.remove(pending)  # Ollama skips it when dequeued; the effect is the same
            elif pending.future.done() and not pending.future.cancelled() and pending.future.exception() is None:
                self.release(pending.future.result())
            raise

    def release(self, runner: Runner) -> None:
        """The caller's request is over: drop its reference; start the keep-alive timer at zero."""
        runner.ref_count -= 1
        if runner.ref_count > 0:
            return
        if runner.session_s <= 0:
            runner.expires_at = to_epoch(monotonic())
            self._start_unload(runner)
            return
        runner.cancel_timer()
        runner.expires_at = to_epoch(monotonic()) + _session_horizon(runner.session_s)
        if not math.isinf(runner.session_s):
            runner.start_timer(runner.session_s, self._expire)

    def expire(self, name: str) -> None:
        """Unload ``name`` as soon as it is idle (the ``keep_alive: 0`` unload request)."""
        runner = self.runners.get(name)
        if runner is None:
            return
        runner.expires_at = to_epoch(monotonic())
        self._mark_for_unload(runner)

    def _use(self, runner: Runner, keep_alive: float | None) -> None:
        runner.ref_count += 1
        runner.cancel_timer()
        if keep_alive is not None:
            runner.session_s = keep_alive

    def _expire(self, runner: Runner) -> None:
        if runner.ref_count <= 0:
            self._start_unload(runner)

    def _mark_for_unload(self, runner: Runner) -> None:
        runner.cancel_timer()
        runner.session_s = 0
        if runner.ref_count <= 0:
            self._start_unload(runner)

    def _start_unload(self, runner: Runner) -> None:
        if runner.unloading:
            return
        runner.unloading = True
        self._spawn(self._unload(runner))

    async def _unload(self, runner: Runner) -> None:
        if runner.engine is not None:
            runner.engine.close()
        await asyncio.sleep(runner.throughput.unload_s)  # memory recovery before the next load
        if self.runners.get(runner.model.name) is runner:
            del self.runners[runner.model.name]
        runner.unloaded.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _process_pending(self) -> None:
        while True:
            while not self._pending:
                self._pending_ready.clear()
                await self._pending_ready.wait()
            pending = self._pending.popleft()
            if pending.gone.done():
                continue
            try:
                await self._schedule(pending)
            except Exception as exc:  # noqa: BLE001 - hand any failure to the waiting request
                if not pending.future.done():
                    pending.future.set_exception(exc)

    async def _schedule(self, pending: _Pending) -> None:
        name = pending.model.name
        while not pending.gone.done():
            runner = self.runners.get(name)
            if runner is not None:
                if runner.unloading:
                    await runner.unloaded.wait()
                    continue
                if await runner.wait_ready() and runner.options.matches(pending.options):
                    self._use(runner, pending.keep_alive)
                    pending.future.set_result(runner)
                    return
                victim = runner
            elif 0 < self._config.max_loaded_models <= len(self.runners):
                victim = self._find_runner_to_unload()
            else:
                await self._load(pending)
                return
            self._mark_for_unload(victim)
            await victim.unloaded.wait()

    def _find_runner_to_unload(self) -> Runner:
        ordered = sorted(self.runners.values(), key=lambda r: (r.session_s, r.model.name))
        return next((r for r in ordered if r.ref_count <= 0), ordered[0])

    async def _load(self, pending: _Pending) -> None:
        model = pending.model
        num_parallel = 1 if model.is_embedding else max(self._config.num_parallel, 1)
        seed = stable_seed(self._config.seed, model.name)
        tp = Throughput(self._preset, self._config.speed, num_parallel, model.speed, seed)
        await asyncio.sleep(tp.fit_s)  # pre-flight: the runner does not exist yet, the queue is blocked
        if pending.gone.done():
            return
        session = pending.keep_alive if pending.keep_alive is not None else self._config.keep_alive
        cache = PromptCache(num_parallel, self._preset, self._config.prompt_cache)
        runner = Runner(model, pending.options, num_parallel, tp, session, cache)
        runner.ref_count = 1
        self.runners[model.name] = runner
        self.load_counts[model.name] += 1
        self._spawn(self._finish_load(runner, pending))

    async def _finish_load(self, runner: Runner, pending: _Pending) -> None:
        sleeper = asyncio.ensure_future(asyncio.sleep(runner.throughput.load_s))
        await asyncio.wait((sleeper, pending.gone), return_when=asyncio.FIRST_COMPLETED)
        if pending.gone.done():  # Ollama aborts the load when its first request goes away
            sleeper.cancel()
            runner.ref_count = 0
            runner.unloading = True
            runner.set_loaded(False)
            if self.runners.get(runner.model.name) is runner:
                del self.runners[runner.model.name]
            runner.unloaded.set()
            return
        runner.engine = Engine(runner.throughput)
        runner.set_loaded(True)
        pending.future.set_result(runner)
