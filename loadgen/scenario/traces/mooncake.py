"""Mooncake-style JSONL traces (kvcache-ai/Mooncake ``FAST25-release``): one request per line,
``{"timestamp": ms, "input_length": tokens, "output_length": tokens, "hash_ids": [ids]}``.

``timestamp`` is milliseconds on the trace's own clock. ``hash_ids`` name the prompt's blocks of
``BLOCK_TOKENS`` tokens, ``ceil(input_length / BLOCK_TOKENS)`` of them: requests whose ids begin alike
share that prefix. Optional here: ``hash_ids`` (without them the prompt shares nothing), and
``session_id`` (a string or number), whose requests form one multi-turn session in file order, each
waiting for the one before (the trace records no end times). Other keys are ignored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadgen.scenario.errors import show
from loadgen.scenario.jsonstream import read_items
from loadgen.scenario.traces.rows import BadField, BadRow, Row, TraceRow, count, number, parsed
from loadgen.scenario.traces.text import BLOCK_TOKENS

REQUIRED = ("timestamp", "input_length", "output_length")


def read(path: Path) -> Iterator[Row]:
    """The file's requests in file order (a JSON array of the same objects is read too). Raises
    ``JsonFileError`` for a file that is not UTF-8 or an array whose syntax is broken."""
    steps: Counter[str] = Counter()
    for item in read_items(path):
        if item.error is not None:
            yield BadRow(item.line, "", item.error)
            continue
        row = parsed(item.line, _row, item.value)
        if isinstance(row, TraceRow) and row.session:
            row = TraceRow(row.line, row.time, row.input_tokens, row.output_tokens, row.session,
                           steps[row.session], blocks=row.blocks)
            steps[row.session] += 1
        yield row


def _row(line: int, value: Any) -> TraceRow:
    if not isinstance(value, dict):
        raise BadField("", f"must be an object with {', '.join(REQUIRED)}, got {show(value)}")
    for key in REQUIRED:
        if key not in value:
            raise BadField(key, "is required")
    input_tokens = count(value["input_length"], "input_length")
    hash_ids = value.get("hash_ids", [])
    if not isinstance(hash_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in hash_ids):
        raise BadField("hash_ids", f"must be a list of whole numbers, got {show(hash_ids)}")
    blocks = math.ceil(input_tokens / BLOCK_TOKENS)
    if hash_ids and len(hash_ids) != blocks:
        raise BadField("hash_ids", f"has {len(hash_ids)} ids, but input_length {input_tokens} makes {blocks} blocks "
                                   f"of {BLOCK_TOKENS} tokens")
    session = value.get("session_id", "")
    if isinstance(session, bool) or not isinstance(session, (str, int)):
        raise BadField("session_id", f"must be a string or a whole number, got {show(session)}")
    return TraceRow(line, number(value["timestamp"], "timestamp") / 1000, input_tokens,
                    count(value["output_length"], "output_length"), session=str(session), blocks=tuple(hash_ids))
