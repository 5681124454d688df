"""A rendered prompt as the runner sees it, without a tokenizer: pieces with token counts.

A text counts ``text.estimate_tokens`` tokens. A templated prompt is laid out as chat templates lay it
out: a start token (the first of the preset's ``prompt_overhead``); each message as a role header, its
text and an end of turn (``message_overhead`` split in two, the header taking the odd token); then the
header that opens the answer (the rest of ``prompt_overhead``). A raw prompt is its text alone.

The prompt cache (``prompt_cache.py``) compares prompts piece by piece: an identical piece is shared
whole; at the first piece that differs, a piece of the same kind shares its header and, when the headers
agree, the tokens of the words both texts begin with (counted as any text is), and the whole text when
both texts are equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from emulator.presets import Preset
from emulator.text import IMAGE_TOKENS, estimate_tokens, truncate_prompt

ANSWER = "assistant"  # the kind of the piece that opens the answer, and of an assistant message


@dataclass(frozen=True, slots=True)
class Piece:
    """``head`` tokens that ``kind`` alone decides, then ``text`` (``text_tokens``), then ``tail`` tokens."""

    kind: str
    head: int = 0
    text: str = ""
    text_tokens: int = 0
    tail: int = 0

    @property
    def tokens(self) -> int:
        return self.head + self.text_tokens + self.tail


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt's ``tokens``, and the ``pieces`` they are made of (none when the prompt was truncated)."""

    pieces: tuple[Piece, ...]
    tokens: int

    @classmethod
    def of(cls, pieces: Iterable[Piece]) -> Prompt:
        held = tuple(pieces)
        return cls(held, sum(p.tokens for p in held))

    def truncated(self, num_ctx: int, num_keep: int) -> Prompt:
        """This prompt after llama-server's truncation to ``num_ctx``; a truncated prompt keeps no pieces, so it
        shares nothing beyond its ``num_keep`` first tokens (a few) with any other and none is counted."""
        tokens = truncate_prompt(self.tokens, num_ctx, num_keep)
        return self if tokens == self.tokens else Prompt((), tokens)

    def answered(self, answer: str, preset: Preset) -> Prompt:
        """What a slot holds after generating ``answer`` for this prompt: the prompt, the answer's text
        after the header that opened it."""
        if not self.pieces:
            return self
        last = self.pieces[-1]
        if last.kind == ANSWER and not last.text:
            opened = replace(last, text=answer, text_tokens=estimate_tokens(answer, preset))
            return Prompt.of((*self.pieces[:-1], opened))
        return Prompt.of((*self.pieces, _text_piece("output", answer, preset)))

    def first(self, tokens: int) -> Prompt:
        """The leading whole pieces that fit in ``tokens``."""
        kept, total = [], 0
        for piece in self.pieces:
            if total + piece.tokens > tokens:
                break
            kept.append(piece)
            total += piece.tokens
        return Prompt(tuple(kept), total)

    def shared_tokens(self, other: Prompt, preset: Preset) -> int:
        """How many tokens ``other`` begins with that this prompt begins with too."""
        total = 0
        for mine, theirs in zip(self.pieces, other.pieces, strict=False):
            if mine == theirs:
                total += theirs.tokens
                continue
            return total + _shared_in_piece(mine, theirs, preset)
        return total


EMPTY = Prompt((), 0)


def _shared_in_piece(mine: Piece, theirs: Piece, preset: Preset) -> int:
    if mine.kind != theirs.kind:
        return 0
    if mine.head != theirs.head:
        return min(mine.head, theirs.head)
    if mine.text != theirs.text:
        return theirs.head + _common_words_tokens(mine.text, theirs.text, preset)
    return theirs.head + theirs.text_tokens + min(mine.tail, theirs.tail)


def _common_words_tokens(a: str, b: str, preset: Preset) -> int:
    """The tokens of the words ``a`` and ``b`` both begin with."""
    common = []
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        common.append(x)
    return estimate_tokens(" ".join(common), preset)


def _text_piece(kind: str, text: str, preset: Preset, head: int = 0, tail: int = 0) -> Piece:
    return Piece(kind, head, text, estimate_tokens(text, preset), tail)


def _digest(value: Any) -> str:
    return hashlib.blake2b(json.dumps(value, sort_keys=True).encode(), digest_size=8).hexdigest()


def _overheads(preset: Preset) -> tuple[int, int, int, int]:
    """(start, answer header, message header, end of turn) token counts."""
    start = min(1, preset.prompt_overhead)
    header = (preset.message_overhead + 1) // 2
    return start, preset.prompt_overhead - start, header, preset.message_overhead - header


def chat_prompt(messages: Iterable[dict[str, Any]], tools: list[Any] | None, preset: Preset) -> Prompt:
    """A chat rendered through a template: each message's content, thinking, tool calls and images plus
    ``message_overhead``; the tool definitions; and ``prompt_overhead`` once."""
    start, answer, header, end = _overheads(preset)
    pieces = [Piece("start", start)]
    if tools:
        pieces.append(_text_piece("tools", json.dumps(tools), preset))
    for msg in messages:
        extras = {key: msg[key] for key in ("thinking", "tool_calls", "images") if msg.get(key)}
        tail = end + estimate_tokens(msg.get("thinking") or "", preset)
        if msg.get("tool_calls"):
            tail += estimate_tokens(json.dumps(msg["tool_calls"]), preset)
        tail += IMAGE_TOKENS * len(msg.get("images") or ())
        kind = str(msg.get("role") or "") + (f"|{_digest(extras)}" if extras else "")
        pieces.append(_text_piece(kind, msg.get("content") or "", preset, header, tail))
    pieces.append(Piece(ANSWER, answer))
    return Prompt.of(pieces)


def generate_prompt(
    prompt: str, system: str, suffix: str, raw: bool, images: Sequence[Any], context: Sequence[Any], preset: Preset
) -> Prompt:
    """A ``/api/generate`` prompt: the ``context`` tokens of an earlier exchange first; raw prompts are counted
    as they are; templated ones add the system message, the per-message and per-prompt overhead."""
    pieces = [Piece(f"context|{_digest(list(context))}", len(context))] if context else []
    image_kind = f"|{_digest(list(images))}" if images else ""
    image_tokens = IMAGE_TOKENS * len(images)
    if raw:
        pieces.append(_text_piece("raw" + image_kind, prompt, preset, tail=image_tokens))
    else:
        start, answer, header, end = _overheads(preset)
        pieces.append(Piece("start", start))
        if system:
            pieces.append(_text_piece("system", system, preset, header, end))
        pieces.append(_text_piece("user" + image_kind, prompt, preset, header, end + image_tokens))
    if suffix:
        pieces.append(_text_piece("suffix", suffix, preset))
    if not raw:
        pieces.append(Piece(ANSWER, answer))
    return Prompt.of(pieces)

