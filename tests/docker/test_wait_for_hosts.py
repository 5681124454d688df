"""docker/wait_for_hosts.py, the master's entrypoint in compose: host parsing, the wait, the exec."""

from __future__ import annotations

import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "wait_for_hosts.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wait_for_hosts", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wfh = load_script()


@pytest.mark.parametrize(
    ("spec", "urls"),
    [
        ("", []),
        ("http://llm:11434", ["http://llm:11434"]),
        ("http://a:1, http://b:2,", ["http://a:1", "http://b:2"]),
        ("gpu=http://a:1,cpu=http://b:2", ["http://a:1", "http://b:2"]),
        ("http://a:1/x?k=v", ["http://a:1/x?k=v"]),  # an '=' after the scheme belongs to the URL
    ],
)
def test_host_urls_reads_the_hosts_option(spec: str, urls: list[str]) -> None:
    assert wfh.host_urls(spec) == urls


def test_wait_for_polls_until_every_host_answers() -> None:
    attempts: dict[str, int] = {"http://a": 0, "http://b": 0}
    ready_after = {"http://a": 1, "http://b": 3}  # b answers on its third try

    def check(url: str) -> bool:
        attempts[url] += 1
        return attempts[url] >= ready_after[url]

    said: list[str] = []
    assert wfh.wait_for(list(attempts), timeout=5, interval=0, check=check, say=said.append) == []
    assert attempts == {"http://a": 1, "http://b": 3}  # a is not asked again once it answered
    assert said == ["wait-for-hosts: waiting for http://b (a model pull can take minutes)"]  # once per 30 s


def test_wait_for_gives_up_at_the_timeout_and_names_what_is_down() -> None:
    down = wfh.wait_for(["http://a", "http://b"], timeout=0.05, interval=0.01,
                        check=lambda url: url == "http://a", say=lambda _: None)
    assert down == ["http://b"]


@pytest.fixture
def ollama_like() -> Iterator[str]:
    """A loopback HTTP server that answers GET /api/version like Ollama."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"version":"0.0.0-test"}' if self.path == "/api/version" else b'{"models":[]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL that refuses connections (a port that was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.integration
def test_answers_uses_the_suites_probe(ollama_like: str, closed_port_url: str) -> None:
    assert wfh.answers(ollama_like)
    assert not wfh.answers(closed_port_url)


def run_script(hosts: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCUST_LLM_HOSTS": hosts, "LLM_WAIT_TIMEOUT": "0.3"}
    return subprocess.run([sys.executable, str(SCRIPT), *command], capture_output=True, text=True, env=env,
                          timeout=30)


@pytest.mark.integration
def test_execs_the_command_once_the_host_answers(ollama_like: str) -> None:
    result = run_script(ollama_like, sys.executable, "-c", "print('locust would start')")
    assert (result.returncode, result.stdout) == (0, "locust would start\n"), result.stderr


@pytest.mark.integration
def test_exits_1_without_running_the_command_when_a_host_stays_down(closed_port_url: str) -> None:
    result = run_script(closed_port_url, sys.executable, "-c", "print('must not run')")
    assert result.returncode == 1 and result.stdout == ""
    assert f"no answer from {closed_port_url}; giving up" in result.stderr
