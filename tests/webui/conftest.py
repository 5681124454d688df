"""Run the real ``locust`` web UI on a loopback port and drive it through its own endpoints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.helpers import REPO, emulator_scenario, free_port, poll, stop_process

SECRET = "sk-webui-test-0123456789"  # passed as --api-key; must never show in a page, file or log


def fast_scenario(name: str = "webui") -> dict[str, Any]:
    """Two workloads on one embedded emulator with two slots, sped up 20 times; the UI sets the users."""
    workloads = [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0},
                 {"name": "agent", "kind": "agent_loop", "steps": 2, "tool_result": {"latency": 0.02}}]
    return emulator_scenario(workloads, num_parallel=2, speed=20, load={"users": 6, "stop_timeout": "30s"},
                             name=name)


@dataclass
class WebUi:
    """A running ``locust`` web UI: ``url(path)`` is under its base path."""

    proc: subprocess.Popen[str]
    root: str  # http://127.0.0.1:PORT plus the base path
    results: Path
    log: Path

    def url(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url(path), timeout=60)

    def post(self, path: str, **form: Any) -> requests.Response:
        return requests.post(self.url(path), data=form, timeout=60)

    def swarm(self, users: int, **form: Any) -> dict[str, Any]:
        """Start a test as the start form does; returns the form's answer."""
        return self.post("swarm", user_count=users, spawn_rate=users, **form).json()

    def stats(self) -> dict[str, Any]:
        return self.get("stats/requests").json()

    def llm_rows(self) -> list[dict[str, str]]:
        """The LLM tab's rows as the UI receives them."""
        tables = {t["key"]: t["data"] for t in self.stats().get("extended_stats", [])}
        return tables.get("llm", [])

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def web_ui(tmp_path: Path) -> Iterator[Callable[..., WebUi]]:
    """``web_ui(scenario, *locust_args, base_path="")`` starts ``locust`` with its web UI; stopped at teardown."""
    started: list[WebUi] = []

    def start(scenario: dict[str, Any], *extra: str, base_path: str = "") -> WebUi:
        n = len(started)
        path = tmp_path / f"scenario{n}.yaml"
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        port = free_port()
        log = tmp_path / f"locust{n}.log"
        results = tmp_path / f"results{n}"
        argv = [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles"), "--scenario", str(path),
                "--results-dir", str(results), "--web-host", "127.0.0.1", "--web-port", str(port),
                "--api-key", SECRET, *(["--web-base-path", base_path] if base_path else []), *extra]
        with log.open("w") as out:
            proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
        ui = WebUi(proc, f"http://127.0.0.1:{port}{base_path}", results, log)
        started.append(ui)

        def answers() -> bool:
            assert proc.poll() is None, f"locust exited:\n{ui.output()}"
            try:
                return requests.get(ui.url(""), timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        poll(answers, "the web UI to answer", 30)
        return ui

    yield start
    for ui in started:
        stop_process(ui.proc)
