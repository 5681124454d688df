"""Big JSON data files read one value at a time: JSONL line by line, or the items of a top-level JSON
array decoded one after another from a buffered read. The whole file is never in memory: at most one
item and one read buffer.

A file whose first non-blank character is ``[`` is an array; anything else is JSONL.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: bytes read at a time (an item larger than this is read in growing steps)
CHUNK = 1 << 16
#: the largest item of an array, in characters: a syntax error is not read to the end of a huge file
MAX_ITEM_CHARS = 64 * 2**20
_BLANK = re.compile(r"[ \t\r\n]*")
_BOM = codecs.BOM_UTF8


class JsonFileError(ValueError):
    """A problem that ends the read: not UTF-8, or an array's syntax broken (its items cannot be told apart)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Item:
    """One value of the file and the line it starts on; ``error`` instead of a value for a JSONL line
    that is not JSON (the next line is still readable)."""

    line: int
    value: Any = None
    error: str | None = None


def read_items(path: Path) -> Iterator[Item]:
    """The file's values in order. Raises ``OSError`` (cannot open) and ``JsonFileError``."""
    with path.open("rb") as file:
        head = file.read(CHUNK).removeprefix(_BOM).lstrip(b" \t\r\n")
        file.seek(0)
        yield from _Array(file).items() if head.startswith(b"[") else _lines(file)


def _lines(file: IO[bytes]) -> Iterator[Item]:
    for number, data in enumerate(file, start=1):
        try:
            line = (data.removeprefix(_BOM) if number == 1 else data).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonFileError(number, "not UTF-8 text") from None
        if not line.strip():
            continue
        try:
            yield Item(number, json.loads(line.rstrip()))  # an error at the line's end, not on the next
        except json.JSONDecodeError as err:
            yield Item(number, error=f"not valid JSON ({err.msg}, column {err.colno})")


class _Array:
    """The items of the JSON array that ``file`` holds."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.utf8 = codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer, self.pos, self.line = "", 0, 1
        self.decoder = json.JSONDecoder()

    def items(self) -> Iterator[Item]:
        assert self._peek() == "["  # read_items looked
        self.pos += 1
        if self._peek() == "]":
            self.pos += 1
        else:
            while True:
                line = self.line
                yield Item(line, self._decode())
                after = self._peek()
                self.pos += 1
                if after == "]":
                    break
                if after != ",":
                    got = "the end of the file" if after is None else repr(after)
                    raise JsonFileError(self.line, f"expected ',' or ']' after the item of line {line}, got {got}")
                if self._peek() == "]":
                    raise JsonFileError(self.line, "',' before the closing ']' (JSON allows no trailing comma)")
        if self._peek() is not None:
            raise JsonFileError(self.line, "text after the array's closing ']'")

    def _more(self) -> bool:
        """Read on (as much again as is pending, at least ``CHUNK``); ``False`` at the end of the file."""
        data = self.file.read(max(CHUNK, len(self.buffer) - self.pos))
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as err:
            line = self.line + self.buffer.count("\n", self.pos) + data.count(b"\n", 0, max(err.start, 0))
            raise JsonFileError(line, "not UTF-8 text") from None
        if not text:
            return False
        if self.pos > CHUNK:  # drop what was consumed
            self.buffer, self.pos = self.buffer[self.pos :], 0
        self.buffer += text
        return True

    def _peek(self) -> str | None:
        """The next character that is not blank (``None`` at the end of the file), reading on as needed."""
        while True:
            blank = _BLANK.match(self.buffer, self.pos)
            assert blank is not None  # the pattern matches the empty string
            self.line += self.buffer.count("\n", self.pos, blank.end())
            self.pos = blank.end()
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._more():
                return None

    def _decode(self) -> Any:
        """The value at ``pos``. An error may only mean the read cut it: read on until it decodes, the file
        ends or the item passes ``MAX_ITEM_CHARS``."""
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as err:
                line = self.line + self.buffer.count("\n", self.pos, err.pos)
                if len(self.buffer) - self.pos < MAX_ITEM_CHARS and self._more():
                    continue
                raise JsonFileError(line, f"not valid JSON ({err.msg})") from None
            if end == len(self.buffer) and self._more():  # a number at the end may go on ("12" of "123")
                continue
            self.line += self.buffer.count("\n", self.pos, end)
            self.pos = end
            return value
