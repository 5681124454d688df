"""Time: the monotonic clock every timer is measured on, and Go's RFC3339Nano timestamps."""

from __future__ import annotations

import time
from typing import Final

monotonic = time.monotonic  # the clock of every duration the emulator reports (asyncio's loop.time too)

#: add to a ``monotonic()`` reading to get Unix epoch seconds (fixed at start, so traces never jump)
EPOCH_OFFSET: Final = time.time() - time.monotonic()

_LOCAL_OFFSET_S: Final = -time.timezone if not time.localtime().tm_isdst else -time.altzone


def to_epoch(mono: float) -> float:
    """A ``monotonic()`` reading as Unix epoch seconds."""
    return mono + EPOCH_OFFSET


def rfc3339nano(epoch_ns: int, utc: bool = True) -> str:
    """Go's ``time.RFC3339Nano``: nanoseconds with trailing zeros trimmed, ``Z`` for UTC.

    ``utc=False`` renders the local zone with its offset, as Go does for ``time.Now()`` values.
    """
    offset = 0 if utc else _LOCAL_OFFSET_S
    seconds, nanos = divmod(epoch_ns + offset * 1_000_000_000, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def now_rfc3339() -> str:
    """``time.Now().UTC()`` as Ollama stamps ``created_at``."""
    return rfc3339nano(time.time_ns())
