"""Text without a model: prompt-token estimates and deterministic output tokens.

There is no tokenizer. A text's token count is ``max(ceil(words * tokens_per_word), ceil(chars / 4))``;
the rendered prompt (``prompt.py``) adds the preset's template overhead per message and per prompt. Output is drawn
from a fixed vocabulary whose JSON encodings are computed once, so streaming a token costs no encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable
from itertools import accumulate
from typing import Final

from emulator.presets import Preset

IMAGE_TOKENS: Final = 256  # tokens an attached image adds to the prompt (a typical vision projector's count)

_WORDS: Final = (
    "the of and to in is that it for as with was on be by this are from or have an they which one you "
    "were all we can her has there been if more when will would who so no model time system data each "
    "request server token queue slot load test speed result value first new two could other after these "
    "may like then only its over such our any very between through where much before long same how well "
    "also back under most work part number people while still because small large local process answer "
    "question output input memory context batch parallel latency throughput measure report simple"
).split()
_PUNCTUATION: Final = (",", ".", "\n\n")

#: every token the emulator can emit, and each one's JSON string encoding as bytes
VOCAB: Final[tuple[str, ...]] = tuple(" " + w for w in _WORDS) + _PUNCTUATION
VOCAB_JSON: Final[tuple[bytes, ...]] = tuple(json.dumps(t).encode() for t in VOCAB)
_IDS: Final = range(len(VOCAB))
_CUMULATIVE: Final = tuple(accumulate([10] * len(_WORDS) + [70, 60, 10]))  # punctuation about every 12 words


def estimate_tokens(text: str, preset: Preset) -> int:
    """Tokens in ``text``: ``max(ceil(words * tokens_per_word), ceil(chars / 4))``."""
    if not text:
        return 0
    return max(math.ceil(len(text.split()) * preset.tokens_per_word), math.ceil(len(text) / 4))


def truncate_prompt(tokens: int, num_ctx: int, num_keep: int) -> int:
    """The prompt length after llama-server's truncation of a prompt longer than ``num_ctx``: keep
    ``num_keep`` tokens, drop whole blocks of half the remaining context from the start."""
    if tokens <= num_ctx:
        return tokens
    keep = min(max(num_keep, 0), num_ctx // 2)
    block = max((num_ctx - keep) // 2, 1)
    erased = (tokens - keep - block) // block
    return min(tokens - erased * block, num_ctx)


def request_rng(seed: int | None, emulator_seed: int, *parts: str) -> random.Random:
    """The RNG for one request's output: the request's ``seed`` option when given (>= 0), else a hash of
    the prompt ``parts`` and the emulator's seed."""
    if seed is not None and seed >= 0:
        return random.Random(seed)
    return random.Random(stable_seed(emulator_seed, *parts))


def stable_seed(emulator_seed: int, *parts: str) -> int:
    """A seed from the emulator's seed and some strings, the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(str(emulator_seed).encode(), digest_size=8)
    for part in parts:
        digest.update(b"\0" + part.encode())
    return int.from_bytes(digest.digest(), "big")


def output_tokens(rng: random.Random, count: int) -> list[int]:
    """``count`` token ids into ``VOCAB``."""
    return rng.choices(_IDS, cum_weights=_CUMULATIVE, k=count)


def detokenize(ids: Iterable[int]) -> str:
    """The text of a token id sequence."""
    return "".join(VOCAB[i] for i in ids)
