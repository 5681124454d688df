"""``--trace-file``: one JSON line per finished request, buffered and written once a second."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class TraceWriter:
    """Appends records to a file; nothing touches the disk on the request path."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self._lines: list[str] = []
        self._task = asyncio.get_running_loop().create_task(self._flush_every_second())

    def record(self, entry: dict[str, Any]) -> None:
        self._lines.append(json.dumps(entry, separators=(",", ":")))

    def flush(self) -> None:
        if self._lines:
            self._file.write("\n".join(self._lines) + "\n")
            self._lines.clear()
        self._file.flush()

    async def _flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.flush()

    def close(self) -> None:
        self._task.cancel()
        self.flush()
        self._file.close()
