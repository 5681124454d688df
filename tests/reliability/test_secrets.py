"""An API key from the environment (a host's ``api_key_env``, or ``--api-key`` / ``LOCUST_LLM_API_KEY``)
reaches every host as ``Authorization: Bearer <key>`` and nothing else: not the records, run.json, the
logs, the report, the emulator's log, what a worker is sent, or the web UI.

A stub server (``tests/ollama_stub.py``) writes down the header of every request it gets, and rejects some with a
message quoting the header back, the way careless proxies do.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pytest
from locust import __version__ as locust_version
from locust.rpc import Message, zmqrpc

from tests.helpers import REPO, LocustRun, Stub, free_port, locust_command, poll, processes_args

pytestmark = pytest.mark.integration

KEY_VAR = "RELIABILITY_TEST_LLM_TOKEN"
#: Locust's start page and stats JSON, and the LLM tab's pages.
WEB_UI_PAGES = ["/", "/stats/requests", "/llm/chart", "/llm/run/requests.csv", "/llm/run/run.json", "/llm/report"]


def chat_scenario(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "secrets",
        "model": "llama3.2:latest",
        "hosts": hosts,
        "routing": "round_robin",
        "options": {"num_predict": 8, "temperature": 0},
        "workloads": [{"name": "chat", "kind": "chat", "turns": 2, "think_time": 0.02}],
        "load": {"users": 2, "duration": "3s", "stop_timeout": "20s"},
    }


def run_outputs(run: LocustRun) -> dict[str, str]:
    """Everything a run leaves for people to read: locust's output (at DEBUG), every file of the run
    directory, the report made from it, and the embedded emulator's log if there was one."""
    report = subprocess.run([sys.executable, "-m", "analysis", "report", str(run.dir)], cwd=REPO, text=True,
                            capture_output=True, timeout=120)
    assert report.returncode in (0, 1), report.stderr
    outputs = {"locust output": run.output, "analysis output": report.stdout + report.stderr}
    outputs |= {path.name: path.read_text(errors="replace") for path in sorted(run.dir.rglob("*")) if path.is_file()}
    for log in re.findall(r"embedded \S+ listening on \S+ \(log: (.+?)\)", run.output):
        outputs[log] = Path(log).read_text(errors="replace")
    return outputs


def assert_key_sent_and_kept_out(token: str, stub: Stub, run: LocustRun, outputs: dict[str, str]) -> None:
    seen = stub.requests()
    assert len(seen[seen.path == "/api/chat"]) >= 4
    assert (seen.authorization == f"Bearer {token}").all(), seen.authorization.unique()  # probes too
    assert {"report.html", "report.md", "summary.json", "requests.csv", "run.json", "scenario.yaml"} <= set(outputs)
    leaks = [name for name, text in outputs.items() if token in text]
    assert not leaks, f"the key appears in {leaks}"
    rejected = run.records[run.records.status == 401]
    assert len(rejected) > 0 and rejected.error_detail.str.contains("[redacted]", regex=False).all()


def test_a_hosts_api_key_env_is_sent_and_never_written(
    run_locust: Callable[..., LocustRun], stub: Stub, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, token)
    run = run_locust(chat_scenario([
        {"name": "stub", "url": stub.url, "api_key_env": KEY_VAR},
        {"name": "emu", "embedded": "emulator", "api_key_env": KEY_VAR, "settings": {"preset": "fast"}},
    ]), "--loglevel", "DEBUG")
    assert set(run.records.host) == {"stub", "emu"}
    assert_key_sent_and_kept_out(token, stub, run, run_outputs(run))


def test_the_api_key_option_is_sent_by_every_worker_and_never_written(
    run_locust: Callable[..., LocustRun], stub: Stub, token: str
) -> None:
    run = run_locust(chat_scenario([{"name": "stub", "url": stub.url}]), "--api-key", token, *processes_args(2),
                     "--loglevel", "DEBUG")
    assert set(run.records.worker) == {0, 1}
    assert_key_sent_and_kept_out(token, stub, run, run_outputs(run))


def test_neither_a_worker_nor_the_web_ui_is_given_the_key(
    stub: Stub, token: str, tmp_path: Path, scenario_file: Callable[..., Path]
) -> None:
    """Anyone who reaches the master's port can join as a worker: what it is sent must hold no key (each
    node reads its own). The web UI's pages must not hold it either."""
    master_port, web_port = free_port(), free_port()
    command = [arg for arg in locust_command(scenario_file(chat_scenario([{"name": "stub", "url": stub.url}])),
                                             tmp_path / "results") if arg != "--headless"]
    proc = subprocess.Popen([*command, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                             str(master_port), "--web-host", "127.0.0.1", "--web-port", str(web_port),
                             "--autostart", "--expect-workers", "1"],
                            cwd=REPO, env={**os.environ, "LOCUST_LLM_API_KEY": token}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        received = join_as_worker(master_port, until="spawn")
        pages = {path: fetch(f"http://127.0.0.1:{web_port}{path}") for path in WEB_UI_PAGES}
    finally:
        proc.kill()
        output, _ = proc.communicate(timeout=30)
    assert {"llm_scenario", "spawn"} <= {message.type for message in received}
    assert not [m.type for m in received if token in repr(m.data)], "a worker was sent the key"
    assert not [path for path, page in pages.items() if token in page], "the web UI shows the key"
    assert token not in output


def join_as_worker(port: int, until: str, timeout: float = 60) -> list[Message]:
    """Connect to a master as a worker would and return the messages it sends, up to the first ``until``."""
    identity = f"eavesdropper_{secrets.token_hex(4)}"
    client = zmqrpc.Client("127.0.0.1", port, identity)
    received: list[Message] = []
    try:
        client.send(Message("client_ready", locust_version, identity))
        with gevent.Timeout(timeout):
            while not received or received[-1].type != until:
                received.append(client.recv())
    finally:
        client.close(linger=0)
    return received


def fetch(url: str) -> str:
    """A web UI page, once the UI answers."""

    def get() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read().decode(errors="replace")
        except urllib.error.HTTPError as e:  # a page with nothing to show yet answers 404: its text counts
            return e.read().decode(errors="replace")
        except OSError:
            return None

    return poll(get, f"the web UI at {url}")
