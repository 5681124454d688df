"""The command line and the environment, parsed the way Ollama parses them."""

from __future__ import annotations

import math
import signal
import subprocess
import sys

import pytest

from emulator.config import ConfigError, load_config, parse_go_duration, parse_host, parse_keep_alive_env
from tests.emulator.conftest import HTTP
from tests.helpers import REPO, start_emulator


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:11434", ("127.0.0.1", 11434)), (":11434", ("", 11434)), ("0.0.0.0", ("0.0.0.0", 11434)),
    ("http://h:8080", ("h", 8080)), ("http://h", ("h", 80)), ("https://h", ("h", 443)),
    ("[::1]:11434", ("::1", 11434)), ("::1", ("::1", 11434)), ("example.com", ("example.com", 11434)),
    ('"127.0.0.1:0"', ("127.0.0.1", 0)), ("", ("127.0.0.1", 11434)),
])  # fmt: skip
def test_host_forms(text, expected):
    assert parse_host(text) == expected


@pytest.mark.parametrize(("text", "seconds"), [
    ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("300ms", 0.3), ("0", 0), ("-1m", -60), ("2h45m30.5s", 9930.5),
])  # fmt: skip
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "m", "5x", "", "1h-5m"])
def test_bad_go_durations(text):
    with pytest.raises(ValueError, match="time: "):
        parse_go_duration(text)


def test_keep_alive_env_forms():
    assert parse_keep_alive_env("10m") == 600
    assert parse_keep_alive_env("120") == 120  # integer seconds
    assert parse_keep_alive_env("0") == 0
    assert math.isinf(parse_keep_alive_env("-1")) and math.isinf(parse_keep_alive_env("-5m"))
    with pytest.raises(ConfigError):
        parse_keep_alive_env("soon")


def test_flags_win_over_environment():
    env = {"OLLAMA_NUM_PARALLEL": "3", "OLLAMA_MAX_QUEUE": "7", "OLLAMA_KEEP_ALIVE": "1h", "OLLAMA_HOST": ":9999"}
    config = load_config(["--num-parallel", "2"], env)
    assert (config.num_parallel, config.max_queue, config.keep_alive, config.port) == (2, 7, 3600, 9999)
    assert load_config([], {"OLLAMA_NUM_PARALLEL": "0", "OLLAMA_CONTEXT_LENGTH": "8192"}).num_parallel == 1
    assert load_config([], {"OLLAMA_CONTEXT_LENGTH": "8192"}).context_length == 8192
    assert load_config([], {"OLLAMA_NUM_PARALLEL": "lots"}).num_parallel == 1  # bad env: Ollama's default


@pytest.mark.integration
@pytest.mark.parametrize("args", [
    ["--num-parallel", "x"], ["--speed", "0"], ["--bogus"], ["--preset", "nope"], ["--keep-alive", "soon"],
    ["--faults", "explode"], ["--tune", "nothing=1"], ["--models", "/does/not/exist.json"],
])  # fmt: skip
def test_bad_flags_exit_2_with_a_message(args):
    proc = subprocess.run([sys.executable, "-m", "emulator", "--host", "127.0.0.1:0", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    assert proc.returncode == 2 and "error" in proc.stderr and proc.stdout == ""


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_listening_line_and_clean_exit(sig):
    emu = start_emulator(env={"OLLAMA_NUM_PARALLEL": "3"}, preset="fast")
    try:
        assert emu.url == f"http://127.0.0.1:{emu.port}" and emu.port > 0
        HTTP.post(emu.url + "/api/generate", json={"model": "llama3.2", "prompt": ""})
        assert HTTP.get(emu.url + "/_emulator/state").json()["models"]["llama3.2:latest"]["num_parallel"] == 3
        emu.proc.send_signal(sig)
        assert emu.proc.wait(10) == 0
        assert emu.proc.stdout.read() == b""  # exactly one line was printed
    finally:
        emu.stop()


@pytest.mark.integration
def test_catalog_from_names_and_version(tmp_path):
    catalog = tmp_path / "models.json"
    catalog.write_text('[{"name": "big:70b", "capabilities": ["completion"], "speed": 0.1}, "mini-embed"]')
    emu = start_emulator(preset="fast", models=str(catalog), version="0.11.4")
    try:
        assert HTTP.get(emu.url + "/api/version").json() == {"version": "0.11.4"}
        names = [m["name"] for m in HTTP.get(emu.url + "/api/tags").json()["models"]]
        assert names == ["big:70b", "mini-embed:latest"]
    finally:
        emu.stop()
