"""A runner's parallel slots: a FIFO counting semaphore with unbounded waiters and no timeout.

Ollama uses ``golang.org/x/sync/semaphore`` (strict FIFO). ``asyncio.Semaphore`` does not promise
FIFO hand-off (a newcomer can take a slot released before a woken waiter runs), so this one hands a
released slot straight to the first waiter. A waiter that is cancelled leaves the queue at once.
"""

from __future__ import annotations

import asyncio
from collections import deque


class FifoSlots:
    """``size`` slots handed out strictly in arrival order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting behind every earlier caller."""
        if self.busy < self.size and not self._waiters:
            self.busy += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # the slot was handed over as we were cancelled
                self.release()
            elif waiter in self._waiters:  # release() may already have dropped it
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back; the first waiter gets it directly."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter: ``busy`` is unchanged
                return
        self.busy -= 1
