"""A real master and real workers as subprocesses, and the check that a distributed run lost nothing.

Workers start with ``-f -`` from an empty directory of their own (their ``TMPDIR`` too, where Locust
writes the locustfile the master ships), as on a machine that has the package installed but none of
the scenario or prompt files. A command ``prefix`` (``ip netns exec NAME``) runs a node elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.helpers import (
    REPO,
    LocustRun,
    assert_locust_counted,
    assert_records_reconcile,
    free_port,
    locust_command,
    read_run,
)

#: Seconds a master may wait for its workers to join before it gives up (exit code 1).
EXPECT_WORKERS_MAX_WAIT_S = 30


class Cluster:
    """The processes of one distributed run; ``kill()`` ends whatever is still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.results = tmp_path / "results"
        self.master_proc: subprocess.Popen[str] | None = None
        self.workers: list[subprocess.Popen[str]] = []
        self._logs: list[Path] = []

    def start_master(self, scenario: Path, workers: int, *args: str, bind: str = "127.0.0.1", port: int = 0,
                     prefix: Sequence[str] = ()) -> int:
        """Start a headless master that waits for ``workers``; returns its port."""
        port = port or free_port()
        argv = locust_command(scenario, self.results, "--master", "--master-bind-host", bind, "--master-bind-port",
                              str(port), "--expect-workers", str(workers), "--expect-workers-max-wait",
                              str(EXPECT_WORKERS_MAX_WAIT_S), *args)
        self.master_proc = self._spawn([*prefix, *argv], REPO, "master", os.environ)
        return port

    def start_worker(self, port: int, master_host: str = "127.0.0.1", prefix: Sequence[str] = ()) -> None:
        """Start a worker in a fresh empty directory that downloads its locustfile from the master."""
        home = self.tmp_path / f"worker{len(self.workers)}"
        (home / "tmp").mkdir(parents=True)
        argv = [sys.executable, "-m", "locust", "-f", "-", "--worker", "--master-host", master_host,
                "--master-port", str(port), "--loglevel", "WARNING"]
        env = {**os.environ, "TMPDIR": str(home / "tmp")}
        self.workers.append(self._spawn([*prefix, *argv], home, home.name, env))

    def wait(self, timeout: float = 90) -> LocustRun:
        """Wait for the master to end the run (and the workers to quit with it); the run it wrote."""
        assert self.master_proc is not None
        try:
            returncode = self.master_proc.wait(timeout)
            for worker in self.workers:
                worker.wait(15)  # they quit when the master does
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run did not end in time\n{self.output()}") from None
        assert returncode in (0, 1), self.output()
        return read_run(self.results, returncode, self.output())

    def output(self) -> str:
        return "\n".join(f"--- {log.stem}\n{log.read_text(errors='replace')}" for log in self._logs)

    def kill(self) -> None:
        for proc in [*self.workers, *([self.master_proc] if self.master_proc else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _spawn(self, argv: list[str], cwd: Path, name: str, env: Any) -> subprocess.Popen[str]:
        log = self.tmp_path / f"{name}.log"
        self._logs.append(log)
        with log.open("w") as out:
            return subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def assert_every_request_recorded_once(run: LocustRun, workers: int) -> None:
    """Every request each worker made is in ``requests.csv`` exactly once, under its own index, and
    in Locust's statistics; ``run.json`` names the workers and their tallies agree."""
    assert_records_reconcile(run)
    assert_locust_counted(run)
    records, listed = run.records, run.info["workers"]
    assert sorted(w["index"] for w in listed) == list(range(workers)), f"{listed}\n{run.output}"
    for worker in listed:
        mine = records[records.worker == worker["index"]]
        assert worker["client_id"].startswith(f"{worker['hostname']}_"), worker
        assert worker["requests_sent"] == worker["records_received"] == len(mine) > 0, worker
        assert mine.session_id.str.startswith(f"{worker['index']}-").all()
