"""Prompt text of a recorded size, for trace requests that carry only sizes.

Words come from the generator of synthetic prompts (``prompts.prose``), ``TOKENS_PER_WORD`` tokens each:
the emulator's own estimate (for this text it counts about 2 % more, by its characters). A prompt is a
run of blocks of ``BLOCK_TOKENS`` tokens, cut to its size; a block's text is fixed by its key, so that
equal keys give equal text on every machine. A Mooncake request's blocks are its ``hash_ids`` (requests
whose ids begin alike share that prefix, word for word); any other request's are its session's own, so
that a session's later, longer prompts begin with its earlier ones, as a chat's growing history does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from functools import lru_cache

from loadgen.scenario.prompts import TOKENS_PER_WORD, prose

BLOCK_TOKENS = 512
WORDS_PER_BLOCK = math.ceil(BLOCK_TOKENS / TOKENS_PER_WORD)


def words_for(tokens: int) -> int:
    """Words of a prompt of ``tokens`` tokens: ``round(tokens / TOKENS_PER_WORD)``, at least 1."""
    return max(1, round(tokens / TOKENS_PER_WORD))


def prompt_text(session: str, blocks: Sequence[int], tokens: int) -> str:
    """A prompt of ``tokens`` tokens: the text of ``blocks`` (hash ids) in order, or without them, of the
    session's own blocks."""
    wanted = words_for(tokens)
    count = math.ceil(wanted / WORDS_PER_BLOCK)
    keys = [f"hash:{block}" for block in blocks[:count]] or [f"session:{session}:{i}" for i in range(count)]
    texts = [_block(key) for key in keys]
    cut = wanted - WORDS_PER_BLOCK * (len(texts) - 1)  # words taken from the last block
    last = texts[-1].split(" ", cut)[:cut]
    return " ".join([*texts[:-1], *last])


@lru_cache(maxsize=1024)
def _block(key: str) -> str:
    """The block's ``WORDS_PER_BLOCK`` words, seeded by its key (``random`` hashes a string seed with SHA-512)."""
    return prose(random.Random(key), WORDS_PER_BLOCK)
