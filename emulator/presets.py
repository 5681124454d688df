"""Named throughput presets: the numbers the speed model (``throughput.py``) is driven by.

``m1`` is fitted to the Apple M1 measurement in ``DESIGN.md`` (small model, 100 output tokens):
one slot gives 24.6 tok/s solo; four slots give 21.7 tok/s solo (the larger KV cache costs ~13%),
~9.9 tok/s per request and ~1.8x the aggregate with four sequences generating. ``gpu`` is a discrete
GPU where four slots give ~3x. ``cpu`` is a slow CPU-only box, ``fast`` is for quick tests.
``docs/emulator.md`` has the formulas and the derivation of each number.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Final

from emulator.config import ConfigError


@dataclass(frozen=True, slots=True)
class Preset:
    """One hardware/model class. Rates are tokens per second, times are seconds (before ``--speed``)."""

    solo_tps: float  # decode speed of one sequence alone, with one slot configured
    parallel_penalty: float  # solo speed falls by 1/(1 + parallel_penalty*(num_parallel-1)) as slots grow
    contention: float  # per-sequence speed r(b) = solo / (1 + contention*(b-1)) with b sequences decoding
    prefill_tps: float  # prompt tokens per second
    load_s: float  # model load once the runner exists (llama-server start to ready)
    fit_s: float  # scheduler pre-flight before the runner exists (GGUF read, memory fit): blocks the queue
    unload_s: float  # unload and memory recovery before the next load may start
    jitter: float  # each step's duration is multiplied by 1 + jitter*u, u uniform in [-1, 1]
    min_output: int  # natural output length range: a request without a smaller num_predict stops
    max_output: int  # ... at a seeded length in [min_output, max_output] with done_reason "stop"
    tokens_per_word: float = 1.3  # prompt-token estimate: words * tokens_per_word (or chars / 4, if larger)
    message_overhead: int = 4  # template tokens per chat message (role header and end-of-turn)
    prompt_overhead: int = 3  # template tokens per prompt (BOS and the assistant header that starts the answer)
    think_share: float = 0.3  # fraction of a thinking model's output that is thinking text
    # r(1)/r(b) by batch size b, measured (a fitted twin, ``preset_file.py``): used for every b from 2 to the
    # largest held, interpolated between held sizes; the contention form above beyond it
    batch_slowdown: tuple[tuple[int, float], ...] = ()

    def slowdown(self, batch: int) -> float:
        """How much slower each of ``batch`` sequences decodes than one alone: the table where it reaches,
        ``1 + contention * (batch - 1)`` beyond it."""
        table = self.batch_slowdown
        if batch <= 1:
            return 1.0
        if not table or batch > table[-1][0]:
            return 1 + self.contention * (batch - 1)
        low_b, low_f = 1, 1.0
        for held_b, held_f in table:
            if held_b == batch:
                return held_f
            if held_b > batch:
                return low_f + (held_f - low_f) * (batch - low_b) / (held_b - low_b)
            low_b, low_f = held_b, held_f
        return low_f  # unreachable: batch <= the largest held size


PRESETS: Final[dict[str, Preset]] = {
    "m1": Preset(
        solo_tps=24.6,
        parallel_penalty=0.045,  # 24.6 / 21.7 = 1.134 over 3 extra slots
        contention=0.41,  # 4 / (1 + 3c) = 1.8x aggregate at b=4 -> r(4) = 21.7/2.23 = 9.7 tok/s
        prefill_tps=350.0,
        load_s=1.2,
        fit_s=0.1,
        unload_s=0.1,
        jitter=0.02,
        min_output=150,
        max_output=600,
    ),
    "gpu": Preset(
        solo_tps=120.0,
        parallel_penalty=0.01,
        contention=0.111,  # 4 / (1 + 3c) = 3.0x aggregate at b=4
        prefill_tps=4000.0,
        load_s=3.0,
        fit_s=0.2,
        unload_s=0.5,
        jitter=0.02,
        min_output=150,
        max_output=800,
    ),
    "cpu": Preset(
        solo_tps=8.0,
        parallel_penalty=0.05,
        contention=0.8,  # 4 / (1 + 3c) = 1.18x: a CPU is compute-bound, batching buys little
        prefill_tps=60.0,
        load_s=4.0,
        fit_s=0.2,
        unload_s=0.2,
        jitter=0.03,
        min_output=150,
        max_output=500,
    ),
    "fast": Preset(
        solo_tps=1000.0,
        parallel_penalty=0.0,
        contention=0.1,
        prefill_tps=50000.0,
        load_s=0.05,
        fit_s=0.01,
        unload_s=0.01,
        jitter=0.0,
        min_output=64,
        max_output=256,
    ),
}

_INT_FIELDS: Final = frozenset({"min_output", "max_output", "message_overhead", "prompt_overhead"})


def get_preset(name: str, tune: dict[str, float] | None = None, base: Preset | None = None) -> Preset:
    """The named preset (or ``base``, e.g. read from a preset file) with ``tune`` overrides applied; raises
    ``ConfigError`` for unknown names or fields."""
    if base is not None:
        preset = base
    else:
        try:
            preset = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    known = {f.name for f in fields(Preset)} - {"batch_slowdown"}
    changes: dict[str, Any] = {}  # field name -> value, checked above
    for key, value in (tune or {}).items():
        if key not in known:
            raise ConfigError(f"unknown preset field {key!r}; fields: {', '.join(sorted(known))}")
        if value < 0:
            raise ConfigError(f"preset field {key} must be >= 0, got {value}")
        changes[key] = int(value) if key in _INT_FIELDS else value
    preset = replace(preset, **changes)
    if preset.solo_tps <= 0 or preset.prefill_tps <= 0:
        raise ConfigError("solo_tps and prefill_tps must be > 0")
    if preset.min_output > preset.max_output:
        raise ConfigError("min_output must be <= max_output")
    return preset
