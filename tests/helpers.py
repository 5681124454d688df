"""Test helpers shared by every test directory: launching the emulator as a real subprocess.

Locust's pytest plugin monkey-patches the test process with gevent, so servers never run in it: the
emulator is started with ``python -m emulator --host 127.0.0.1:0`` and found through the one line it
prints once listening (``emulator listening on http://HOST:PORT``).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"^emulator listening on (http://(.+):(\d+))$")


@dataclass
class EmulatorProcess:
    """A running emulator: ``url`` (``http://127.0.0.1:PORT``), ``port``, ``proc``; ``stop()`` ends it."""

    proc: subprocess.Popen
    url: str
    port: int
    stderr_path: Path
    args: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def emulator_args(**flags: object) -> list[str]:
    """Flags as CLI arguments: ``num_parallel=4`` -> ``--num-parallel 4``; ``True`` -> a bare flag."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        elif value is True:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def start_emulator(env: dict[str, str] | None = None, timeout: float = 15.0, **flags: object) -> EmulatorProcess:
    """Start ``python -m emulator`` on a free loopback port and wait for its listening line.

    ``flags`` become CLI flags (see ``emulator_args``); ``host`` defaults to ``127.0.0.1:0``. ``env``
    replaces the inherited ``OLLAMA_*`` variables (which are never inherited).
    """
    flags.setdefault("host", "127.0.0.1:0")
    args = [sys.executable, "-m", "emulator", *emulator_args(**flags)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    clean.update(env or {})
    clean["PYTHONPATH"] = str(REPO) + os.pathsep + clean.get("PYTHONPATH", "")
    stderr_file = tempfile.NamedTemporaryFile(prefix="emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr_file, env=clean, cwd=REPO)
    stderr_file.close()
    emu = EmulatorProcess(proc, "", 0, Path(stderr_file.name), args)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        if proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            byte = os.read(proc.stdout.fileno(), 1)
            if not byte:
                break
            line += byte
    match = LISTENING.match(line.decode(errors="replace").strip())
    if match is None:
        emu.stop()
        raise RuntimeError(f"emulator did not start ({args}): stdout={line!r} stderr={emu.stderr()}")
    emu.url, emu.port = match.group(1), int(match.group(3))
    return emu
