"""Prompt sources: inline lists, text and JSONL files, and synthetic prose, resolved at load time.

Written forms: a list of strings; ``{inline: [...]}``; ``{file: prompts.txt, split: line|blank_line}``;
``{file: rows.jsonl}`` (rows ``{"prompt": str}``, ``{"text": str}`` or ``{"messages": [{role, content}]}``);
``{synthetic: {words: Dist, count, seed}}``; each with ``order: cycle|random``. Relative paths are read
from the scenario file's directory (the ``base_dir`` of the validation context). The prompts themselves
end up in ``Prompts.items``, which is what ships to workers: they never read a file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, StrictInt, ValidationInfo, model_validator

from loadgen.scenario.dists import Dist, DistIn, Uniform
from loadgen.scenario.errors import FieldProblem, file_problems, show
from loadgen.scenario.spec import Spec, context_value, from_payload, within

ROLES = ("system", "user", "assistant", "tool")
MAX_PROMPT_FILE_BYTES = 64 * 2**20
MAX_SYNTHETIC_WORDS = 2_000_000
#: Tokens per word of ordinary English text: an estimate without a tokenizer (the emulator's own,
#: ``emulator/presets.py`` ``tokens_per_word``), for sizes given in tokens (traces) or read in words
#: (a recorded answer's ``num_predict``).
TOKENS_PER_WORD = 1.3
_ROW_KEYS = ("prompt", "text", "messages")

#: The fixed vocabulary of synthetic prompts: common English words, so any tokenizer sees ordinary text.
_WORDS = tuple(
    """the of and to in is that for it as with was on be by at this are from or have an they which one you
    were all there would their we been has when who will more no if out so said what up its about into
    than them can only other new some could time these two may then do first any my now such like our over
    even most made after also did many before must through back years where much your way well down should
    because each just those people how too little state good very make world still own see work long get
    here between both life being under never day same another know while last might great old year off
    come since against go came right used take three system model server request queue token slot memory
    cache latency answer question summary report test file line error value number result data code change
    plan step build check search read write list table user agent tool task review design simple clear""".split()
)

Text = Annotated[str, Field(strict=True, min_length=1)]


class Message(Spec):
    """One chat message of a multi-message prompt."""

    role: Literal["system", "user", "assistant", "tool"]
    content: Annotated[str, Field(strict=True)]


#: A prompt: plain text, or a list of chat messages (JSONL ``messages`` rows).
Prompt = str | tuple[Message, ...]


class Synthetic(Spec):
    """Generated prose: ``count`` prompts of ``words`` words each, drawn from a fixed word list."""

    words: Annotated[Dist, DistIn(lo=1, hi=100_000, integer=True)] = Uniform(min=20, max=60)
    count: Annotated[StrictInt, within(1, 100_000)] = 100
    seed: StrictInt = 0

    def generate(self) -> tuple[str, ...]:
        """The prompts: the same for the same settings, on every machine."""
        rng = random.Random(self.seed)
        lengths = [int(self.words.sample(rng)) for _ in range(self.count)]  # whole numbers: an integer field
        if sum(lengths) > MAX_SYNTHETIC_WORDS:
            raise FieldProblem(
                f"would generate {sum(lengths)} words in all, more than {MAX_SYNTHETIC_WORDS} (every worker gets "
                "a copy); lower count or words"
            )
        return tuple(prose(rng, length) for length in lengths)


def prose(rng: random.Random, words: int) -> str:
    """``words`` words of sentences from the fixed word list (synthetic prompts, simulated tool output)."""
    sentences, left = [], words
    while left > 0:
        length = min(left, rng.randint(6, 14))
        sentence = " ".join(rng.choice(_WORDS) for _ in range(length))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        left -= length
    return " ".join(sentences)


class Prompts(Spec):
    """Where a workload's prompts come from (as written) and, in ``items``, the prompts themselves."""

    inline: Annotated[tuple[Text, ...], Field(min_length=1)] | None = None
    file: Text | None = None
    split: Literal["line", "blank_line"] = "line"
    synthetic: Synthetic | None = None
    order: Literal["cycle", "random"] = "cycle"
    items: tuple[Prompt, ...] = ()

    _payload_only = frozenset({"items"})

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, list):
            return {"inline": data}
        if not isinstance(data, dict):
            raise FieldProblem(
                f"must be a list of prompts or a mapping with inline, file or synthetic, got {show(data)}"
            )
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _resolve(cls, data: Any, handler: ModelWrapValidatorHandler[Prompts], info: ValidationInfo) -> Prompts:
        prompts = handler(data)
        if from_payload(info) or isinstance(data, Prompts):
            return prompts
        sources = [name for name in ("inline", "file", "synthetic") if getattr(prompts, name) is not None]
        if len(sources) != 1:
            raise FieldProblem(
                "set exactly one of inline (a list), file or synthetic"
                + (f", not {' and '.join(sources)}" if sources else ""),
                *sources[1:2],
            )
        if prompts.split != "line" and prompts.file is None:
            raise FieldProblem("split applies only to prompt files", "split")
        return prompts.model_copy(update={"items": prompts._read(context_value(info, "base_dir") or Path("."))})

    def _read(self, base_dir: Path) -> tuple[Prompt, ...]:
        if self.inline is not None:
            return self.inline
        if self.synthetic is not None:
            return self.synthetic.generate()
        assert self.file is not None  # exactly one source is set (_resolve)
        path = base_dir / self.file
        with file_problems(path, "prompt file"):
            if path.stat().st_size > MAX_PROMPT_FILE_BYTES:
                raise FieldProblem(
                    f"{path} is larger than {MAX_PROMPT_FILE_BYTES // 2**20} MiB; every worker gets a copy of the "
                    "prompts, so use a sample of it",
                    "file",
                )
            text = path.read_text(encoding="utf-8")
        items = _jsonl_prompts(text, path) if path.suffix == ".jsonl" else _text_prompts(text, self.split)
        if not items:
            skipped = "blank lines" if path.suffix == ".jsonl" else "blank lines and # comments"
            raise FieldProblem(f"{path} has no prompts ({skipped} are skipped)", "file")
        return items

    def pick(self, index: int, rng: random.Random) -> Prompt:
        """The prompt for a session's ``index``-th draw: in file order (``cycle``) or at random."""
        return self.items[index % len(self.items)] if self.order == "cycle" else rng.choice(self.items)


def _text_prompts(text: str, split: str) -> tuple[str, ...]:
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    if split == "line":
        return tuple(line for line in lines if line)
    blocks, block = [], []
    for line in [*lines, ""]:
        if line:
            block.append(line)
        elif block:
            blocks.append("\n".join(block))
            block = []
    return tuple(blocks)


def _jsonl_prompts(text: str, path: Path) -> tuple[Prompt, ...]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_row_prompt(json.loads(line)))
        except json.JSONDecodeError as err:
            raise FieldProblem(f"{path}:{number}: not valid JSON ({err.msg})", "file") from None
        except ValueError as err:
            raise FieldProblem(f"{path}:{number}: {err}", "file") from None
    return tuple(items)


def _row_prompt(row: Any) -> Prompt:
    """One JSONL row as a prompt; ``ValueError`` says what is wrong with it."""
    keys = [key for key in _ROW_KEYS if isinstance(row, dict) and key in row]
    if len(keys) != 1:
        raise ValueError('each row must be an object with exactly one of "prompt", "text" or "messages"')
    value = row[keys[0]]
    if keys[0] != "messages":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f'"{keys[0]}" must be a non-empty string, got {show(value)}')
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(f'"messages" must be a non-empty list of {{"role", "content"}} objects, got {show(value)}')
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f'messages[{index}] must have exactly "role" and "content"')
        if message["role"] not in ROLES or not isinstance(message["content"], str):
            raise ValueError(
                f"messages[{index}]: role must be one of {', '.join(ROLES)} and content a string, "
                f"got role {show(message['role'])}"
            )
        messages.append(Message(role=message["role"], content=message["content"]))
    return tuple(messages)
