"""Our own servers a run starts on a free loopback port and stops at its end: the emulator and the real
llama.cpp server. Each is a subprocess that announces its address with one stdout line,
``... listening on http://127.0.0.1:PORT``."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final

import gevent

from analysis.schema import HostInfo
from loadgen.scenario.hosts import EmulatorHost, LlamacppHost
from loadgen.scenario.units import KeepAlive
from loadgen.servers.process import EmbeddedServerError, ServerProcess

log = logging.getLogger(__name__)

READY_LINE: Final = re.compile(r"listening on (https?://\S+)")
START_TIMEOUT_S: Final = 120.0  # the first llama.cpp start assembles a 253 MB model


def server_argv(host: EmulatorHost | LlamacppHost) -> list[str]:
    """The command line that starts an embedded host on a free loopback port."""
    if isinstance(host, EmulatorHost):
        base = [sys.executable, "-m", "emulator", "--host", "127.0.0.1:0"]
    else:
        base = [sys.executable, "-m", "loadgen.servers.llamacpp", "--host", "127.0.0.1", "--port", "0"]
    return base + _flags(host.settings)


def _flags(settings: Iterable[tuple[str, Any]]) -> list[str]:
    """Settings as flags: ``num_parallel=4, tune={"solo_tps": 30}`` -> ``--num-parallel 4 --tune solo_tps=30``."""
    argv: list[str] = []
    for key, value in settings:
        flag = f"--{key.replace('_', '-')}"
        if value is None:
            continue
        if isinstance(value, KeepAlive):
            argv += [flag, str(value.wire)]
        elif isinstance(value, Mapping):
            argv += [part for name, item in value.items() for part in (flag, f"{name}={item}")]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


class EmbeddedServer:
    """An emulator or llama.cpp server process, ready once it prints its address."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.process = ServerProcess(name, argv)
        self.url: str | None = None

    @property
    def launch(self) -> tuple[object, ...]:
        """What decides whether a later run can reuse this process."""
        return (self.process.argv,)

    @property
    def log_path(self) -> str:
        return self.process.log_path

    def info(self) -> HostInfo:
        """What run.json records of this server beyond its settings: nothing (the settings say it all)."""
        return HostInfo()

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the process and return its URL once it listens."""
        proc = self.process.spawn(read_stdout=True)
        assert proc.stdout is not None
        try:
            with gevent.Timeout(timeout):
                while line := proc.stdout.readline():
                    self.process.log_line(line)
                    if match := READY_LINE.search(line):
                        self.url = match.group(1)
                        break
        except gevent.Timeout:
            pass
        if self.url is None:
            tail = self.process.tail()
            self.stop()
            raise EmbeddedServerError(f"embedded {self.name} did not start within {timeout:.0f} s: {tail}")
        self.process.drain()
        log.info("embedded %s listening on %s (log: %s)", self.name, self.url, self.log_path)
        return self.url

    def stop(self) -> None:
        """Stop the process and close its log."""
        self.process.stop()

    @property
    def running(self) -> bool:
        return self.process.running
