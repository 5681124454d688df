"""docker/ollama-entrypoint.sh, run for real with a fake `ollama` on PATH that logs every call."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs the script with sh

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "ollama-entrypoint.sh"

# The fake CLI logs "OLLAMA_HOST args" per call. The private server (port 11435) marks itself up and
# runs until killed; the public one returns at once so that the script ends. `list` answers once the
# server is up (giving it a moment, as a connecting client would); `show` knows only models named
# have*; a `pull` of a model named broken* fails.
FAKE_OLLAMA = """#!/bin/sh
log() { echo "$OLLAMA_HOST $*" >> "$FAKE_LOG"; }
case "$1" in
    serve)
        log "$@"
        [ "$OLLAMA_HOST" = 127.0.0.1:11435 ] || exit 0
        touch "$FAKE_LOG.up"
        exec sleep 30 ;;
    list)
        for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e "$FAKE_LOG.up" ] && break; sleep 0.05; done
        [ -e "$FAKE_LOG.up" ] && log "$@" ;;
    show) log "$@"; case "$2" in have*) ;; *) exit 1 ;; esac ;;
    pull) log "$@"; case "$2" in broken*) exit 1 ;; esac ;;
esac
"""


def run_entrypoint(tmp_path: Path, models: str) -> tuple[int, list[str]]:
    """Run the script with the fake CLI; return its exit code and the CLI's call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ollama"
    fake.write_text(FAKE_OLLAMA)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
           "OLLAMA_HOST": "0.0.0.0:11434", "OLLAMA_MODEL": models}
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=20)
    return result.returncode, log.read_text().splitlines()


def test_script_is_valid_posix_sh() -> None:
    assert subprocess.run(["sh", "-n", str(SCRIPT)]).returncode == 0


def test_pulls_missing_models_privately_then_serves_on_ollama_host(tmp_path: Path) -> None:
    code, calls = run_entrypoint(tmp_path, "have:1 new:2")
    assert code == 0
    assert calls == [
        "127.0.0.1:11435 serve",        # private server, unreachable from other containers
        "127.0.0.1:11435 list",         # ...answering
        "127.0.0.1:11435 show have:1",  # already in the volume: not pulled again
        "127.0.0.1:11435 show new:2",
        "127.0.0.1:11435 pull new:2",
        "0.0.0.0:11434 serve",          # the real server, on the configured address, last
    ]


@pytest.mark.parametrize("models", ["broken:1", "new:1 broken:2"])
def test_a_failed_pull_stops_the_container_before_serving(tmp_path: Path, models: str) -> None:
    code, calls = run_entrypoint(tmp_path, models)
    assert code != 0
    assert "0.0.0.0:11434 serve" not in calls
