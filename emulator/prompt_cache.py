"""A runner's prompt cache, kept as Ollama's runner keeps it (``runner/ollamarunner/cache.go``).

Each of the ``num_parallel`` cache slots holds the tokens of the last sequence it ran: that request's
prompt and the answer it generated. A request that got a parallel slot takes the free cache slot whose
tokens share the longest prefix with its prompt (the first such slot on a tie: ``findLongestCacheSlot``,
Ollama's default without ``OLLAMA_MULTIUSER_CACHE``), and only the tokens after that prefix are evaluated.
A prompt found whole still evaluates its last token, which yields the first output token. Embeddings
never reuse the cache (their runner calls ``LoadCacheSlot`` with ``cachePrompt`` false).

A request reports its whole prompt in ``prompt_eval_count`` and only the evaluation of the tokens that
were not cached in ``prompt_eval_duration``, as Ollama does since 0.1.49.
"""

from __future__ import annotations

from emulator.presets import Preset
from emulator.prompt import EMPTY, Prompt


class PromptCache:
    """``size`` cache slots; ``enabled`` False evaluates every prompt whole (llama.cpp's ``cache_prompt: false``)."""

    def __init__(self, size: int, preset: Preset, enabled: bool = True) -> None:
        self.enabled = enabled
        self.preset = preset  # counts the tokens of the texts prompts share
        self._held: list[Prompt] = [EMPTY] * size
        self._busy = [False] * size

    def take(self, prompt: Prompt) -> tuple[int, int]:
        """Take the free slot whose tokens share the longest prefix with ``prompt``: (slot, cached tokens)."""
        slot, longest = -1, -1
        for index, held in enumerate(self._held):
            if self._busy[index]:
                continue
            shared = held.shared_tokens(prompt, self.preset) if self.enabled else 0
            if shared > longest:
                slot, longest = index, shared
        if slot < 0:
            raise RuntimeError("no free cache slot: more sequences than parallel slots")
        self._busy[slot] = True
        return slot, max(0, min(longest, prompt.tokens - 1))

    def release(self, slot: int, held: Prompt) -> None:
        """The sequence on ``slot`` ended, leaving ``held`` in it."""
        self._busy[slot] = False
        self._held[slot] = held if self.enabled else EMPTY

