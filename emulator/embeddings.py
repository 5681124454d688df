"""Embeddings shared by ``/api/embed``, ``/api/embeddings`` and ``/v1/embeddings``: deterministic vectors,
and each input's prompt evaluated on the model's slot so the timers and the queueing are real."""

from __future__ import annotations

import math
import random
from typing import Any

from emulator.catalog import ModelInfo
from emulator.engine import Sequence
from emulator.exchange import Exchange
from emulator.inference import generate, hold_runner
from emulator.interface import Emulator
from emulator.resolve import runner_options
from emulator.text import estimate_tokens, stable_seed
from emulator.validation import ApiError, parse_keep_alive, parse_options


def embedding(text: str, dims: int, seed: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    rng = random.Random(stable_seed(seed, text))
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 7) for v in vec]


async def embed_inputs(
    app: Emulator, ex: Exchange, model: ModelInfo, inputs: list[str], body: dict[str, Any]
) -> list[int]:
    """Run each input through the model's slot (prefill only) and return the token counts."""
    keep_alive = parse_keep_alive(body)
    opts = parse_options(body.get("options"))
    r_opts = runner_options(app, model, opts, None)
    counts = []
    for text in inputs:
        tokens = estimate_tokens(text, app.preset)
        if tokens > r_opts.num_ctx:
            if body.get("truncate") is False:
                raise ApiError(400, "the input length exceeds the context length")
            tokens = r_opts.num_ctx
        counts.append(tokens)
    async with hold_runner(app.scheduler, model, r_opts, keep_alive, ex.stamps) as runner:
        for tokens in counts:  # one slot for an embedding model: the inputs run one after another
            ex.seq = Sequence(tokens, 0)
            await generate(runner, ex.seq, ex.stamps)
    return counts


def embed_input_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(400, "invalid input type")
