"""The speed model: how long one engine step, one prefill and one model load take.

Formulas (``docs/emulator.md`` derives the preset numbers from them), with ``S`` the ``--speed`` factor
and ``k`` the model's own speed factor from the catalog:

- solo decode rate with ``P`` slots configured: ``solo(P) = solo_tps * S * k / (1 + parallel_penalty * (P - 1))``
- per-sequence decode rate with ``b`` sequences decoding: ``r(b) = solo(P) / (1 + contention * (b - 1))``,
  or ``solo(P) / batch_slowdown[b]`` where a fitted twin's measured table reaches; the aggregate is ``b * r(b)``
- one decode step (every active sequence emits one token): ``1 / r(b)`` seconds
- prefill of a joining sequence: ``prompt_tokens / (prefill_tps * S * k)`` seconds
- load, pre-flight and unload: ``load_s / S``, ``fit_s / S``, ``unload_s / S``
- jitter: each step's duration is multiplied by ``1 + jitter * u``, ``u`` uniform in [-1, 1] from a seeded RNG
"""

from __future__ import annotations

import random

from emulator.presets import Preset


class Throughput:
    """The preset's numbers for one runner (a loaded model with ``num_parallel`` slots)."""

    __slots__ = ("_step", "_prefill_tps", "_jitter", "_rng", "_preset", "solo_tps", "load_s", "fit_s", "unload_s")

    def __init__(self, preset: Preset, speed: float, num_parallel: int, model_speed: float, seed: int) -> None:
        scale = speed * model_speed
        self.solo_tps = preset.solo_tps * scale / (1 + preset.parallel_penalty * (num_parallel - 1))
        self._preset = preset
        self._prefill_tps = preset.prefill_tps * scale
        self.load_s = preset.load_s / speed
        self.fit_s = preset.fit_s / speed
        self.unload_s = preset.unload_s / speed
        self._jitter = preset.jitter
        self._rng = random.Random(seed)
        # decode step duration by batch size, precomputed for the hot loop; index 0 = nothing to decode
        self._step = [0.0] + [1.0 / self.sequence_tps(b) for b in range(1, num_parallel + 1)]

    def sequence_tps(self, batch: int) -> float:
        """``r(b)``: tokens per second of each of ``batch`` sequences decoding together."""
        return self.solo_tps / self._preset.slowdown(batch)

    def decode_step_s(self, batch: int) -> float:
        """Seconds for one step in which each of ``batch`` sequences emits one token (0 for an empty batch)."""
        return self._step[batch]

    def prefill_s(self, prompt_tokens: int) -> float:
        """Seconds to evaluate ``prompt_tokens`` prompt tokens."""
        return prompt_tokens / self._prefill_tps

    def jittered(self, seconds: float) -> float:
        """``seconds`` with the preset's seeded jitter applied."""
        if not self._jitter:
            return seconds
        return seconds * (1 + self._jitter * (2 * self._rng.random() - 1))
