"""A request's model and load-time settings, as every generation and embedding route resolves them."""

from __future__ import annotations

from emulator.catalog import ModelInfo
from emulator.interface import Emulator
from emulator.scheduler import RunnerOptions
from emulator.validation import ApiError, Options


def find_model(app: Emulator, name: str) -> ModelInfo:
    model = app.catalog.get(name)
    if model is None:
        raise ApiError(404, f"model '{name}' not found")
    return model


def runner_options(app: Emulator, model: ModelInfo, opts: Options, shift: bool | None) -> RunnerOptions:
    """The load-time settings a request asks for; ``num_ctx`` defaults to the server's and is clamped."""
    num_ctx = opts.num_ctx if opts.num_ctx is not None else app.config.context_length
    num_ctx = max(min(num_ctx, model.context_length), 4)
    return RunnerOptions(
        num_ctx=num_ctx,
        num_batch=opts.num_batch,
        num_gpu=opts.num_gpu,
        main_gpu=opts.main_gpu,
        use_mmap=opts.use_mmap,
        num_thread=opts.num_thread,
        shift=True if shift is None else shift,
    )
