#!/usr/bin/env python3
"""``wait-for-hosts COMMAND [ARG...]``: wait until every host in ``LOCUST_LLM_HOSTS`` answers, then exec COMMAND.

The master probes its LLM hosts once, when it starts, and exits if one does not answer. In compose the
target may still be pulling its model, so the master's entrypoint is ``wait-for-hosts locust``. A host
"answers" when the suite's own probe (``loadgen.wire.probe``) gets any HTTP response from it, so this
waits for exactly what the master checks. No hosts set: COMMAND runs at once (the scenario's hosts).

``LLM_WAIT_TIMEOUT`` (seconds, default 1800) bounds the wait; past it the exit code is 1.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence

from loadgen.wire.probe import HostUnreachable, probe

DEFAULT_TIMEOUT_S = 1800.0
INTERVAL_S = 2.0
REPORT_EVERY_S = 30.0


def host_urls(spec: str) -> list[str]:
    """The URLs of a ``--hosts`` value, ``URL[,URL...]`` or ``name=URL[,name=URL...]``."""
    urls = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, url = item.partition("=")
        urls.append(url if sep and "://" not in name else item)
    return urls


def answers(url: str) -> bool:
    """True when the server at ``url`` gives any HTTP response to the suite's probe."""
    try:
        probe(url)
    except HostUnreachable:
        return False
    return True


def wait_for(
    urls: Sequence[str],
    timeout: float,
    interval: float = INTERVAL_S,
    check: Callable[[str], bool] = answers,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[str]:
    """Poll ``urls`` until all answer or ``timeout`` seconds pass; return the ones still down."""
    deadline = time.monotonic() + timeout
    next_report = 0.0
    down = list(urls)
    while True:
        down = [url for url in down if not check(url)]
        now = time.monotonic()
        if not down or now >= deadline:
            return down
        if now >= next_report:
            say(f"wait-for-hosts: waiting for {', '.join(down)} (a model pull can take minutes)")
            next_report = now + REPORT_EVERY_S
        time.sleep(min(interval, max(deadline - now, 0.0)))


def main(argv: Sequence[str]) -> int:
    """Wait, then replace this process with ``argv`` (so it gets the container's signals)."""
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    urls = host_urls(os.environ.get("LOCUST_LLM_HOSTS", ""))
    down = wait_for(urls, float(os.environ.get("LLM_WAIT_TIMEOUT") or DEFAULT_TIMEOUT_S))
    if down:
        print(f"wait-for-hosts: no answer from {', '.join(down)}; giving up", file=sys.stderr)
        return 1
    os.execvp(argv[0], list(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
