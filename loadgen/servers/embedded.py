"""Servers a run starts itself on a free loopback port and stops at its end: the emulator and the
real llama.cpp server. Each is a subprocess that announces its address with one stdout line,
``... listening on http://127.0.0.1:PORT``; it dies with the process that started it."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any, Final, TextIO

import gevent

from loadgen.scenario.hosts import EmulatorHost, LlamacppHost
from loadgen.scenario.units import KeepAlive

log = logging.getLogger(__name__)

READY_LINE: Final = re.compile(r"listening on (https?://\S+)")
START_TIMEOUT_S: Final = 120.0  # the first llama.cpp start assembles a 253 MB model
STOP_TIMEOUT_S: Final = 10.0


class EmbeddedServerError(RuntimeError):
    """An embedded server did not start."""


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
    """One embedded server process."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.url: str | None = None
        self.log_path = os.path.join(tempfile.gettempdir(), f"llm-embedded-{name}-{os.getpid()}.log")
        self._proc: subprocess.Popen[str] | None = None
        self._log: TextIO | None = None
        self._drain: gevent.Greenlet | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the process and return its URL once it listens."""
        self._log = open(self.log_path, "w", encoding="utf-8")
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=_die_with_parent,
        )
        assert self._proc.stdout is not None
        try:
            with gevent.Timeout(timeout):
                while line := self._proc.stdout.readline():
                    self._log.write(line)
                    if match := READY_LINE.search(line):
                        self.url = match.group(1)
                        break
        except gevent.Timeout:
            pass
        if self.url is None:
            self.stop()
            raise EmbeddedServerError(f"embedded {self.name} did not start within {timeout:.0f} s: {self._tail()}")
        self._drain = gevent.spawn(self._drain_output)
        log.info("embedded %s listening on %s (log: %s)", self.name, self.url, self.log_path)
        return self.url

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and close its log."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._drain is not None:
            self._drain.kill()
            self._drain = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _drain_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None and self._log is not None
        for line in self._proc.stdout:
            self._log.write(line)

    def _tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return "no output"
        return " | ".join(lines[-5:]) or "no output"


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies (no orphan servers)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
