"""``embedded: ollama`` and setting sweeps, with the stand-in ``ollama`` (tests/standin/ollama: the emulator
served as ``ollama serve``, reading Ollama's environment and model store) first on PATH.

What is checked is what the stand-in's own log and the run directories say happened: one ``ollama serve``
per setting, started with that setting in its environment on a port of its own, stopped with its model
runner after its run, also when the run is interrupted or killed; and one clear line when the binary is
missing, a model is not pulled or the server never answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from loadgen.scenario.hosts import OllamaHost
from loadgen.servers import EmbeddedServerError, OllamaServer
from tests.helpers import REPO, live_records, poll, read_records, start_emulator

pytestmark = pytest.mark.integration

STANDIN = REPO / "tests" / "standin" / "ollama"
MODEL = "llama3.2"
PROMPTS = ["Why is the sky blue?", "Describe a hash table.", "Name three rivers.", "What is TCP?"]


def scenario(settings: dict[str, Any] | None = None, *, sweep: list[int] | None = None,
             levels: tuple[int, ...] = (1, 2), rounds: int = 1) -> dict[str, Any]:
    """Rounds of N requests at once against one embedded ollama, swept over num_parallel."""
    out: dict[str, Any] = {
        "name": "ollama-sweep", "model": MODEL,
        "hosts": [{"name": "box", "embedded": "ollama", "settings": settings or {}}],
        "options": {"num_predict": 16, "temperature": 0},
        "workloads": [{"name": "seed", "kind": "batch", "batch_size": 1, "prompts": PROMPTS}],
        "load": {"shape": "rounds", "levels": list(levels), "rounds": rounds},
    }
    if sweep:
        out["variants"] = {"sweep": {"num_parallel": sweep}}
    return out


class Box:
    """A test's machine: a bin directory holding the stand-in ``ollama``, a model store, and the stand-in's log."""

    def __init__(self, tmp_path: Path, models: tuple[str, ...] = (MODEL,)) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir(parents=True)
        binary = self.bin / "ollama"  # the venv's Python runs it, whatever python3 the PATH has
        binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
        binary.chmod(0o755)
        self.store = tmp_path / "models"
        for model in models:
            name, _, tag = model.partition(":")
            manifest = self.store / "manifests" / "registry.ollama.ai" / "library" / name / (tag or "latest")
            manifest.parent.mkdir(parents=True)
            manifest.write_text("{}")
        self.log = tmp_path / "standin.jsonl"
        self.results = tmp_path / "results"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
        return {**env, "PATH": f"{self.bin}{os.pathsep}{env['PATH']}", "OLLAMA_MODELS": str(self.store),
                "OLLAMA_STANDIN_LOG": str(self.log), "OLLAMA_STANDIN_ARGS": "--speed 10", **extra}

    def command(self, spec: dict[str, Any], *args: str) -> list[str]:
        path = self.tmp / "scenario.yaml"
        path.write_text(yaml.safe_dump(spec))
        return [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles"), "--scenario", str(path),
                "--headless", "--results-dir", str(self.results), "--no-report", "--loglevel", "WARNING", *args]

    def run(self, spec: dict[str, Any], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(spec, *args), env=self.env(**env), cwd=REPO, capture_output=True,
                              text=True, timeout=300)

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [event for event in map(json.loads, lines) if event["event"] == kind]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_nothing_left(box: Box) -> None:
    """Every ``ollama serve`` the stand-in's log names, and its model runner, is gone; no locust of this
    test is left either."""
    pids = [pid for event in box.events("serve") for pid in (event["pid"], event["runner_pid"])]
    assert pids
    poll(lambda: not any(alive(pid) for pid in pids), f"the stand-in processes {pids} to end", timeout=60)
    poll(lambda: not processes_of(box.tmp), "this test's locust processes to end", timeout=60)


def processes_of(tmp_path: Path) -> list[psutil.Process]:
    """The live processes whose command line names ``tmp_path``."""
    return [p for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or []) and alive(p.pid)]


def test_a_sweep_starts_and_stops_ollama_once_per_setting_and_compares(tmp_path):
    box = Box(tmp_path / "box")
    users_ollama = start_emulator(trace_file=tmp_path / "users-ollama.jsonl")  # the one the user already runs
    try:
        proc = box.run(scenario({"keep_alive": "10m"}, sweep=[1, 2]), OLLAMA_HOST=f"127.0.0.1:{users_ollama.port}")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

        # One server per setting, each with its own setting, store and port, each stopped after its run.
        served, stopped = box.events("serve"), box.events("stopped")
        assert [event["env"]["OLLAMA_NUM_PARALLEL"] for event in served] == ["1", "2"]
        assert [event["pid"] for event in stopped] == [event["pid"] for event in served]
        for event in served:
            assert event["env"]["OLLAMA_MODELS"] == str(box.store) and event["env"]["OLLAMA_KEEP_ALIVE"] == "10m"
            assert event["env"]["OLLAMA_HOST"] != f"127.0.0.1:{users_ollama.port}"
        assert_nothing_left(box)
        # The Ollama already running was left alone: it still answers, and it got no request.
        with urllib.request.urlopen(f"{users_ollama.url}/api/version", timeout=5) as response:
            assert response.status == 200
        assert not (tmp_path / "users-ollama.jsonl").exists() or not (tmp_path / "users-ollama.jsonl").read_text()
    finally:
        users_ollama.stop()

    runs = {path.name.rsplit("-", 1)[-1]: path for path in box.results.glob("*-num_parallel-*")}
    assert sorted(runs) == ["1", "2"]
    for slots, run_dir in runs.items():
        info = json.loads((run_dir / "run.json").read_text())
        assert info["swept"] == {"num_parallel": int(slots)} and info["complete"]
        (host,) = info["hosts"]
        assert (host["embedded"], host["server"], host["version"]) == ("ollama", "ollama", "0.12.0-standin")
        assert host["environment"]["OLLAMA_NUM_PARALLEL"] == slots and host["binary"] == str(box.bin / "ollama")
        assert host["url"] == f"http://{host['environment']['OLLAMA_HOST']}"
        records = read_records(run_dir / "requests.csv")
        assert len(records) == 1 + 2 and (records.status == 200).all()  # a round of 1, then of 2; no warm-up
        assert records.server_load_s.max() < records.server_eval_s.min()  # loaded before the run: no load paid

    (compare,) = box.results.glob("*-compare/compare.json")
    summary = json.loads(compare.read_text())
    targets = {target["run"]: target for target in summary["targets"]}
    assert targets["num_parallel-1"]["serial"] is True and targets["num_parallel-1"]["overlap"] == "1"
    assert targets["num_parallel-2"]["configured"] == 2
    assert [row["setting"] for row in summary["setting_curve"]] == [{"num_parallel": 1}, {"num_parallel": 2}]
    assert summary["recommendation"]["setting"]["num_parallel"] in (1, 2) and summary["recommendation"]["line"]


def test_ctrl_c_mid_sweep_stops_the_run_its_server_and_every_later_setting(tmp_path):
    box = Box(tmp_path)
    spec = scenario(sweep=[1, 2], levels=(1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4), rounds=3)
    proc = subprocess.Popen(box.command(spec), env=box.env(), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        poll(lambda: len(live_records(box.results / "")) >= 3, "the first setting's records", timeout=120)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output[-3000:]
    assert "stopped: 0 of 2 runs finished" in output
    assert len(box.events("serve")) == 1  # the second setting never started
    assert_nothing_left(box)
    (run_dir,) = box.results.iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] and len(read_records(run_dir / "requests.csv")) >= 3  # what it measured is kept


def test_a_killed_run_leaves_no_server_behind(tmp_path):
    box = Box(tmp_path)
    spec = scenario(sweep=[1, 2], levels=(1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4), rounds=3)
    proc = subprocess.Popen(box.command(spec), env=box.env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        poll(lambda: len(live_records(box.results)) >= 3, "the first setting's records", timeout=120)
        proc.kill()  # SIGKILL: nothing of ours runs; the kernel tells the children (PR_SET_PDEATHSIG)
    finally:
        proc.wait()
    assert_nothing_left(box)
    (run_dir,) = box.results.iterdir()  # the setting being measured stopped at once, and no other started
    assert len(box.events("serve")) == 1 and json.loads((run_dir / "run.json").read_text())["complete"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_while_ollama_loads_its_model_stops_at_once(tmp_path, sig):
    box = Box(tmp_path)
    slow_load = box.env(OLLAMA_STANDIN_ARGS="--speed 10 --tune load_s=300")  # a 30 s load
    proc = subprocess.Popen(box.command(scenario()), env=slow_load, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        poll(lambda: box.events("serve"), "ollama serve to start", timeout=60)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in output, output[-3000:]
    assert "stopped while starting the hosts: no run was started, nothing was measured" in output
    assert_nothing_left(box)
    assert not box.results.exists() or not any(box.results.iterdir())


def test_a_missing_binary_stops_the_run_with_one_line(tmp_path):
    box = Box(tmp_path)
    empty = tmp_path / "nothing"
    empty.mkdir()
    proc = box.run(scenario(), PATH=str(empty))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "`ollama` is not on PATH: install Ollama (https://ollama.com/download) or set settings.binary" \
        in proc.stderr
    proc = box.run(scenario({"binary": str(tmp_path / "bin" / "olama")}))
    assert proc.returncode == 2 and f"settings.binary '{tmp_path / 'bin' / 'olama'}' does not exist" in proc.stderr


def test_a_model_not_pulled_stops_the_run_naming_the_pull(tmp_path):
    box = Box(tmp_path, models=("qwen3:0.6b",))
    proc = box.run(scenario())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"box: llama3.2 not in the model store {box.store}: run `ollama pull llama3.2` (or set settings.pull: " \
           "true)" in proc.stderr
    assert_nothing_left(box)


def test_a_server_that_never_answers_stops_the_run_and_is_stopped(tmp_path):
    box = Box(tmp_path)
    hang = tmp_path / "bin" / "ollama-hang"
    hang.write_text(f'#!/bin/sh\necho "starting" >&2\nexec "{sys.executable}" -c "import time; time.sleep(600)" '
                    f'"{tmp_path}"\n')
    hang.chmod(0o755)
    proc = box.run(scenario({"binary": str(hang), "start_timeout": "2s"}))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"`{hang} serve` did not answer" in proc.stderr and "within 2 s (settings.start_timeout)" in proc.stderr
    assert "its log ends: starting" in proc.stderr
    assert not processes_of(tmp_path)


def test_a_server_that_exits_at_once_is_reported_with_its_last_words(tmp_path):
    crash = tmp_path / "ollama"
    crash.write_text('#!/bin/sh\necho "Error: listen tcp: address already in use" >&2\nexit 1\n')
    crash.chmod(0o755)
    server = OllamaServer(OllamaHost(name="box", settings={"binary": str(crash)}), [MODEL])
    with pytest.raises(EmbeddedServerError) as caught:
        server.start()
    assert str(caught.value) == (f"box: `{crash} serve` exited with code 1 before it answered; its log ends: "
                                 "Error: listen tcp: address already in use")


def test_pull_true_pulls_what_the_store_lacks_then_loads_it(tmp_path, monkeypatch):
    box = Box(tmp_path, models=())
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    server = OllamaServer(OllamaHost(name="box", settings={"pull": True}), [MODEL, "nomic-embed-text"])
    try:
        url = server.start()
        with urllib.request.urlopen(f"{url}/api/tags", timeout=5) as response:
            tags = {model["name"] for model in json.load(response)["models"]}
        with urllib.request.urlopen(f"{url}/api/ps", timeout=5) as response:
            loaded = {model["name"] for model in json.load(response)["models"]}
    finally:
        server.stop()
    assert tags == loaded == {"llama3.2:latest", "nomic-embed-text:latest"}  # pulled, then each loaded once
    assert_nothing_left(box)
