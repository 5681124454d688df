"""Garbage collection in small, regular steps instead of CPython's occasional long pauses.

With thousands of streams in flight the heap holds hundreds of thousands of tracked objects, and an
automatic full collection then stops the event loop for tens of milliseconds: every step due in that
time is late, and the timers report it (Go's concurrent collector pauses for well under a millisecond).
So automatic collection is switched off, the objects alive after start-up are frozen out of it, and
a task collects the young generations every ``YOUNG_EVERY_S`` (a short pause: only recent objects)
and everything every ``FULL_EVERY_S`` (bounding memory held by long-lived cycles).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Final

YOUNG_EVERY_S: Final = 0.25
FULL_EVERY_S: Final = 60.0


async def pace_gc() -> None:
    """Run for the life of the process; restores automatic collection when cancelled."""
    gc.collect()
    gc.freeze()
    gc.disable()
    young_per_full = int(FULL_EVERY_S / YOUNG_EVERY_S)
    try:
        while True:
            for _ in range(young_per_full):
                await asyncio.sleep(YOUNG_EVERY_S)
                gc.collect(1)
            gc.collect()
    finally:
        gc.enable()
