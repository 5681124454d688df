"""A server subprocess that cannot outlive the run: its own process group (so the whole tree stops,
helpers such as Ollama's model runners included), asked by Linux to stop when its parent dies, and
its output kept in a log file whose last lines explain a failed start."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import IO, Final

import gevent

STOP_TIMEOUT_S: Final = 10.0


class EmbeddedServerError(RuntimeError):
    """An embedded server did not start (or is not installed); the message is one line for the user."""


class ServerProcess:
    """One server process and its log."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env) if env is not None else None
        self.log_path = os.path.join(tempfile.gettempdir(), f"llm-embedded-{name}-{os.getpid()}.log")
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._drain: gevent.Greenlet | None = None

    def spawn(self, *, read_stdout: bool) -> subprocess.Popen[str]:
        """Start the process; with ``read_stdout`` the caller reads stdout (then ``drain`` it), otherwise
        stdout and stderr both go to the log."""
        self._log = open(self.log_path, "w", encoding="utf-8")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE if read_stdout else self._log,
                stderr=self._log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches the run, which stops us in order; killpg reaches all
                preexec_fn=die_with_parent,
            )
        except OSError as e:
            self.stop()
            raise EmbeddedServerError(f"cannot start {self.argv[0]}: {e.strerror or e}") from None
        return self.proc

    def log_line(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line)

    def drain(self) -> None:
        """Copy the rest of a read stdout into the log, in the background."""
        self._drain = gevent.spawn(self._copy_stdout)

    def _copy_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log_line(line)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``) and close the log."""
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            _signal_group(proc.pid, signal.SIGKILL)  # whatever of the group is left, e.g. a stuck helper
            proc.wait()
        if self._drain is not None:
            self._drain.kill()
            self._drain = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 5) -> str:
        """The log's last lines, joined with `` | `` (``no output`` if empty)."""
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                text = [line.strip() for line in f if line.strip()]
        except OSError:
            return "no output"
        return " | ".join(text[-lines:]) or "no output"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the process leads its own group (start_new_session)
    except ProcessLookupError:
        pass


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies (no orphan servers)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
