"""Conversation datasets for the chat workload: ShareGPT-style and OpenAI ``messages`` files, read once at
load time, filtered and sampled, shipped to workers with the scenario (workers never read a file).

Written form (a chat workload's ``conversations``; a plain string is the ``file``)::

    conversations:
      file: data/chat.jsonl          # a JSON array or JSONL, streamed (jsonstream.py)
      format: auto                   # sharegpt ("conversations": [{from, value}...]) | openai ("messages")
      history: model                 # the model's own answers go back as history | recorded: the file's
      num_predict: from_answer_words # each request's num_predict estimated from the recorded answer
      user_turns: {min: 2, max: 8}   # requests per conversation
      prompt_words: {max: 3000}      # words of its longest prompt (the last, with the recorded history)
      sample: 200                    # a uniform sample of this many (reservoir: one pass over the file)
      seed: 0                        # same seed, same sample, on every machine
      skip_bad: false                # true: skip malformed entries and count them instead of refusing

A conversation becomes a system message (a leading system turn) and a list of exchanges: the user's turn
and the recorded answer to it. Consecutive turns of one speaker are joined (a blank line between), an
answer before the first user turn is dropped (it answers nothing).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from itertools import dropwhile, groupby
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ModelWrapValidatorHandler, StrictBool, StrictInt, ValidationInfo, model_validator

from loadgen.scenario.errors import FieldProblem, file_problems, one_of, show
from loadgen.scenario.jsonstream import JsonFileError, read_items
from loadgen.scenario.prompts import MAX_PROMPT_FILE_BYTES, TOKENS_PER_WORD, Text
from loadgen.scenario.spec import Spec, context_value, from_payload, within

#: What each dataset calls its speakers, and who they are in a chat request.
SPEAKERS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "assistant": "assistant",
    "system": "system",
}
_TURNS_KEY = {"sharegpt": "conversations", "openai": "messages"}
_TURN_KEYS = (("from", "value"), ("role", "content"))  # ShareGPT's, OpenAI's (both seen in ShareGPT copies)

Format = Literal["auto", "sharegpt", "openai"]


def words(text: str) -> int:
    """Words in ``text``, split on white space."""
    return len(text.split())


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request of a replayed conversation: the user's turn, and the answer the dataset recorded to it
    (``None`` after the last user turn)."""

    user: str
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation of a dataset: its system message and its exchanges, in order."""

    system: str | None
    exchanges: tuple[Exchange, ...]

    @property
    def prompt_words(self) -> int:
        """Words of its longest prompt: the last, with the system message and every turn recorded before."""
        texts = [self.system or "", *(e.user for e in self.exchanges), *(e.answer or "" for e in self.exchanges[:-1])]
        return sum(words(text) for text in texts)

    @property
    def size(self) -> int:
        """Bytes of text (UTF-8) it carries to every worker."""
        texts = [self.system or "", *(text for e in self.exchanges for text in (e.user, e.answer or ""))]
        return sum(len(text.encode()) for text in texts)


class BadEntry(ValueError):
    """What is wrong with one entry of a dataset, and in which of its fields (``conversations[2].from``)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True, slots=True)
class _Turn:
    role: str
    text: str
    where: str  # the turn's speaker field, e.g. ``conversations[2].from``


def parse_entry(value: Any, format: Format) -> Conversation:
    """One entry of a dataset (a JSON value) as a conversation; ``BadEntry`` says what is wrong with it."""
    key = _turns_key(value, format)
    turns = value[key]
    if not isinstance(turns, list) or not turns:
        raise BadEntry(f"must be a non-empty list of turns, got {show(turns)}", key)
    return _conversation([_turn(turn, f"{key}[{index}]") for index, turn in enumerate(turns)], key)


def _turns_key(value: Any, format: Format) -> str:
    if not isinstance(value, dict):
        raise BadEntry(f'must be an object with a "conversations" or "messages" list, got {show(value)}')
    if format != "auto":
        key = _TURNS_KEY[format]
        if key not in value:
            raise BadEntry(f'has no "{key}" list (format: {format})')
        return key
    keys = [key for key in _TURNS_KEY.values() if key in value]
    if len(keys) != 1:
        which = "both" if keys else "neither"
        raise BadEntry(f'has {which} "conversations" (ShareGPT) {"and" if keys else "nor"} "messages" (OpenAI)')
    return keys[0]


def _turn(turn: Any, where: str) -> _Turn:
    if isinstance(turn, str):  # some copies store each turn as a JSON string
        try:
            turn = json.loads(turn)
        except json.JSONDecodeError:
            raise BadEntry("must be a turn object, got a string that is not one in JSON", where) from None
    if not isinstance(turn, dict):
        raise BadEntry(f'must be an object with "from" and "value" (or "role" and "content"), got {show(turn)}', where)
    speaker_key, text_key = next((keys for keys in _TURN_KEYS if keys[0] in turn), _TURN_KEYS[0])
    speaker, text = turn.get(speaker_key), turn.get(text_key)
    if not isinstance(speaker, str) or speaker not in SPEAKERS:
        got = f", got {show(speaker)}" if speaker_key in turn else ""
        raise BadEntry(f"must be one of {one_of(SPEAKERS)}{got}", f"{where}.{speaker_key}")
    if not isinstance(text, str):
        raise BadEntry(
            f"must be a string, got {show(text)}" if text_key in turn else "is required", f"{where}.{text_key}"
        )
    if SPEAKERS[speaker] == "user" and not text.strip():
        raise BadEntry("must not be blank in a user turn", f"{where}.{text_key}")
    return _Turn(SPEAKERS[speaker], text, f"{where}.{speaker_key}")


def _conversation(turns: list[_Turn], key: str) -> Conversation:
    system = turns.pop(0).text if turns[0].role == "system" else None
    misplaced = next((turn for turn in turns if turn.role == "system"), None)
    if misplaced:
        raise BadEntry("a system turn may only come first", misplaced.where)
    spoken = [
        (role, "\n\n".join(turn.text for turn in run))
        for role, run in groupby(dropwhile(lambda turn: turn.role == "assistant", turns), lambda t: t.role)
    ]
    if not spoken:
        raise BadEntry("has no user turn", key)
    # ``spoken`` alternates: user, assistant, user...
    exchanges = tuple(
        Exchange(spoken[index][1], spoken[index + 1][1] if index + 1 < len(spoken) else None)
        for index in range(0, len(spoken), 2)
    )
    return Conversation(system, exchanges)


class Bounds(Spec):
    """A range a count must lie in: ``{min, max}``, either left out."""

    min: Annotated[StrictInt, within(0, 10**9)] | None = None
    max: Annotated[StrictInt, within(0, 10**9)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Bounds:
        if self.min is not None and self.max is not None and self.max < self.min:
            raise FieldProblem(f"must be >= min ({self.min}), got {self.max}", "max")
        return self

    def holds(self, value: int) -> bool:
        """Whether ``value`` is within the bounds."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Counts(Spec):
    """What the read found: entries in the file, bad ones skipped, ones the filters left out, and the
    conversations kept (the sample)."""

    entries: int
    bad: int
    filtered: int
    kept: int

    def __str__(self) -> str:
        return (
            f"{self.kept} conversations kept of {self.entries} entries ({self.bad} bad skipped, "
            f"{self.filtered} filtered out)"
        )


class Conversations(Spec):
    """A chat workload's conversation dataset (as written) and, in ``items``, the conversations kept."""

    file: Text
    format: Format = "auto"
    history: Literal["model", "recorded"] = "model"
    num_predict: Literal["from_answer_words"] | None = None
    user_turns: Bounds = Bounds()
    prompt_words: Bounds = Bounds()
    sample: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    seed: StrictInt = 0
    skip_bad: StrictBool = False
    items: tuple[Conversation, ...] = ()
    counts: Counts | None = None

    _payload_only = frozenset({"items", "counts"})

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            return {"file": data}
        if not isinstance(data, dict):
            raise FieldProblem(f"must be a file name or a mapping with file: and options, got {show(data)}")
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _resolve(
        cls, data: Any, handler: ModelWrapValidatorHandler[Conversations], info: ValidationInfo
    ) -> Conversations:
        conversations = handler(data)
        if from_payload(info) or isinstance(data, Conversations):
            return conversations
        return conversations._read(context_value(info, "base_dir") or Path("."))

    def _read(self, base_dir: Path) -> Conversations:
        """These settings with the file read: its conversations filtered, sampled, counted."""
        path = base_dir / self.file
        sample = _Sample(self.sample, random.Random(self.seed))
        entries = bad = filtered = 0
        with file_problems(path, "conversation file"):
            try:
                for item in read_items(path):
                    entries += 1
                    try:
                        if item.error is not None:
                            raise BadEntry(item.error)
                        conversation = parse_entry(item.value, self.format)
                    except BadEntry as err:
                        if not self.skip_bad:
                            raise FieldProblem(f"{path}:{item.line}: {err}", "file") from None
                        bad += 1
                        continue
                    if self.user_turns.holds(len(conversation.exchanges)) and self.prompt_words.holds(
                        conversation.prompt_words
                    ):
                        sample.add(conversation)
                    else:
                        filtered += 1
            except JsonFileError as err:
                raise FieldProblem(f"{path}:{err.line}: {err.message}", "file") from None
        counts = Counts(entries=entries, bad=bad, filtered=filtered, kept=len(sample.kept))
        if not sample.kept:
            raise FieldProblem(f"{path}: no conversation to replay: {counts}", "file")
        return self.model_copy(update={"items": sample.in_file_order(), "counts": counts})

    def pick(self, index: int) -> Conversation:
        """The conversation for a session's ``index``-th draw: in order, round and round."""
        return self.items[index % len(self.items)]

    def num_predict_for(self, exchange: Exchange) -> int | None:
        """The request's ``num_predict`` when it comes from the recorded answer: ``ceil(words *
        TOKENS_PER_WORD)``, at least 1; ``None`` (the workload's option) otherwise or without an answer."""
        if self.num_predict is None or exchange.answer is None:
            return None
        return max(1, math.ceil(words(exchange.answer) * TOKENS_PER_WORD))


class _Sample:
    """A uniform sample of ``size`` conversations (every one, for ``None``) from one pass over a file:
    reservoir sampling (Vitter's algorithm R), kept in file order, its text within ``MAX_PROMPT_FILE_BYTES``."""

    def __init__(self, size: int | None, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.kept: list[tuple[int, Conversation]] = []
        self.seen = self.bytes = 0

    def add(self, conversation: Conversation) -> None:
        index, self.seen = self.seen, self.seen + 1
        if self.size is None or index < self.size:
            self.kept.append((index, conversation))
        else:
            slot = self.rng.randrange(index + 1)  # the new one is in with probability size / (index + 1)
            if slot >= self.size:
                return
            self.bytes -= self.kept[slot][1].size
            self.kept[slot] = (index, conversation)
        self.bytes += conversation.size
        if self.bytes > MAX_PROMPT_FILE_BYTES:
            raise FieldProblem(
                f"the conversations kept hold more than {MAX_PROMPT_FILE_BYTES // 2**20} MiB of text and every "
                "worker gets a copy: keep fewer (sample:, user_turns:, prompt_words:)",
                "sample" if self.size else "file",
            )

    def in_file_order(self) -> tuple[Conversation, ...]:
        return tuple(conversation for _, conversation in sorted(self.kept, key=lambda kept: kept[0]))
