"""``python -m emulator`` / ``ollama-emulator``: run the emulator until SIGTERM or SIGINT.

Once listening it prints exactly one line, ``emulator listening on http://HOST:PORT``, and flushes, so a
launcher that passed ``--host 127.0.0.1:0`` can read the port.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
from collections.abc import Sequence

from emulator.app import serve
from emulator.config import Config, ConfigError, load_config


def _announce(url: str) -> None:
    sys.stdout.write(f"emulator listening on {url}\n")
    sys.stdout.flush()


async def _run(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, _announce, stop)


def _raise_open_files_limit() -> None:
    """Thousands of streams need thousands of sockets: lift the soft limit to the hard one, as Go does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad flags or settings)."""
    config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    _raise_open_files_limit()
    try:
        asyncio.run(_run(config))
    except ConfigError as exc:
        print(f"ollama-emulator: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ollama-emulator: error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
