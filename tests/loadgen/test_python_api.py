"""A user's own locustfile on the suite's user classes, run by plain ``locust``, judged by its records.

Each locustfile here is a real file run by a real ``locust`` process against a real emulator on loopback
(or the embedded one); the hooks write what they saw to a JSON-lines log named by ``HOOK_LOG``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import loadgen
from tests.helpers import REPO, LocustRun, assert_records_reconcile, free_port, kill_group, read_run

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "chat_from_answers.py"

HOOKS = """
import json, os
from loadgen import AgentLoopUser, BatchUser, ChatUser
from locust import User, task

def log(**fields):
    with open(os.environ["HOOK_LOG"], "a") as out:
        out.write(json.dumps(fields) + "\\n")

class Talk(ChatUser):
    model = "llama3.2"
    turns = 2
    think_time = 0
    options = {"num_predict": 8}

    def next_message(self, history, turn):
        log(hook="next_message", turn=turn, roles=[m.role for m in history],
            last=history[-1].content if history else None)
        return "first question" if turn == 0 else "about: " + history[-1].content[:40]

class Tools(AgentLoopUser):
    model = "llama3.2"
    steps = 2
    options = {"num_predict": 32}

    def run_tool(self, call):
        log(hook="run_tool", name=call.name)
        return "tool says 42"

class Docs(BatchUser):
    model = "llama3.2"
    batch_size = 5
    pause = 0.2
    options = {"num_predict": 4}

    def documents(self):
        log(hook="documents")
        return ["one document", "another document"]

class Plain(User):
    '''Not an LLM user: Locust runs it beside ours.'''
    wait_time = lambda self: 0.5

    @task
    def tick(self):
        log(hook="plain")
"""


def locust(locustfile: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``locust -f LOCUSTFILE --headless`` in ``tmp_path`` (results go to ``tmp_path/results``)."""
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--results-dir",
            str(tmp_path / "results"), "--loglevel", "WARNING", *args]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def finished_run(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> LocustRun:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return read_run(tmp_path / "results", proc.returncode, output)


def write(tmp_path: Path, source: str, name: str = "my_locustfile.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def hook_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_example_runs_headless_with_locusts_own_options(emulator_factory, tmp_path):
    emulator = emulator_factory(num_parallel=2, preset="m1", speed=20)
    run = finished_run(locust(EXAMPLE, tmp_path, "-u", "4", "-r", "4", "-t", "6s", "-H", emulator.url), tmp_path)

    assert {"requests.csv", "run.json", "report.html", "report.md", "summary.json"} <= {
        p.name for p in run.dir.iterdir()}
    assert_records_reconcile(run)
    records = run.records
    assert set(records.workload) == {"FollowUpChat", "Calculator"}
    assert (records.error == "").all(), records.error_detail.unique()
    # -H pointed every class at the emulator this test started; -u 4 users, no more.
    assert [host["url"] for host in run.info["hosts"]] == [emulator.url]
    assert records.user_id.nunique() <= 4
    steady = run.stages.set_index("stage").loc["steady"]
    assert steady.users == 4
    # Locust's tables carry the TTFT entries beside the end-to-end ones.
    assert {"E2E", "TTFT", "JOB"} <= set(run.locust_stats.Type)


def test_a_locustfile_that_only_subclasses_chat_user(emulator_factory, tmp_path):
    emulator = emulator_factory(num_parallel=2, preset="m1", speed=20)
    locustfile = write(tmp_path, f"""
        from loadgen import ChatUser

        class Support(ChatUser):
            host = "{emulator.url}"
            model = "llama3.2"
            turns = 3
            think_time = 0.1
            options = {{"num_predict": 12}}
    """)
    run = finished_run(locust(locustfile, tmp_path, "-u", "2", "-t", "4s"), tmp_path)

    assert_records_reconcile(run)
    assert run.info["scenario"]["name"] == "my_locustfile"
    assert [host["url"] for host in run.info["hosts"]] == [emulator.url]
    records = run.records
    assert set(records.workload) == {"Support"} and set(records.kind) == {"chat"}
    assert (records.num_predict == 12).all()
    # Three turns a conversation, the history growing turn by turn.
    for _, session in records.groupby("session_id"):
        session = session.sort_values("step")
        assert session.step.tolist() == list(range(len(session))) and len(session) <= 3
        assert session.prompt_tokens.is_monotonic_increasing
    assert (run.dir / "report.html").exists()


def test_hooks_run_and_locust_users_of_the_locustfile_are_kept(emulator_factory, tmp_path):
    emulator = emulator_factory(num_parallel=4, preset="m1", speed=20)
    log_path = tmp_path / "hooks.jsonl"
    proc = locust(write(tmp_path, HOOKS), tmp_path, "-u", "4", "-r", "4", "-t", "5s", "-H", emulator.url,
                  env={"HOOK_LOG": str(log_path)})
    run = finished_run(proc, tmp_path)
    calls = hook_log(log_path)
    records = run.records

    assert set(records.workload) == {"Talk", "Tools", "Docs"}
    assert any(call["hook"] == "plain" for call in calls), "the locustfile's plain User was dropped"
    # next_message: turn 0 on an empty history; turn 1 sees the question and the model's answer.
    turns = [call for call in calls if call["hook"] == "next_message"]
    assert {call["turn"] for call in turns} == {0, 1}
    assert all(call["roles"] == [] for call in turns if call["turn"] == 0)
    later = [call for call in turns if call["turn"] == 1]
    assert later and all(call["roles"] == ["user", "assistant"] and call["last"] for call in later)
    # run_tool: after each answer, once per tool call the model made (once for an answer without one).
    answered = records[(records.workload == "Tools") & (records.error == "")]
    assert answered.tool_calls.sum() > 0
    assert len([c for c in calls if c["hook"] == "run_tool"]) >= answered.tool_calls.clip(lower=1).sum()
    # documents: two per batch, whatever batch_size says.
    batches = records[records.workload == "Docs"].groupby("session_id").size()
    assert len(batches) > 0 and (batches == 2).all()
    assert len([c for c in calls if c["hook"] == "documents"]) >= len(batches)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('model = "llama3.2"\n    turns = 0', r"my_locustfile.py: Bad\.turns: must be >= 1, got 0"),
        ('model = "llama3.2"\n    prompts = 7', r"Bad\.prompts: must be a list of prompts"),
        ('model = "llama3.2"\n    tunrs = 3', r"Bad\.tunrs: is not a workload setting; did you mean 'turns'"),
        ("turns = 2", r"Bad: has no model"),
    ],
)
def test_a_bad_class_attribute_is_one_line_naming_class_and_attribute(tmp_path, attributes, expected):
    locustfile = write(tmp_path, f"from loadgen import ChatUser\n\nclass Bad(ChatUser):\n    {attributes}\n")
    proc = locust(locustfile, tmp_path, "-u", "1", "-t", "2s", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(expected, errors[0]), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()  # refused before any load


def test_scenario_and_own_classes_together_are_refused(tmp_path):
    locustfile = write(tmp_path, 'from loadgen import ChatUser\n\nclass Mine(ChatUser):\n    model = "llama3.2"\n')
    proc = locust(locustfile, tmp_path, "--scenario", str(REPO / "scenarios" / "chat.yaml"), timeout=60)
    assert proc.returncode == 2 and "Mine" in proc.stderr and "Traceback" not in proc.stderr


def test_the_example_with_a_master_and_two_workers_that_receive_it(tmp_path):
    """The master runs the example; workers start with ``-f -`` in empty directories and get it from the
    master; the embedded emulator (no host set anywhere) serves them all."""
    port = str(free_port())
    results = tmp_path / "results"
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(EXAMPLE), "--headless", "--master", "--master-bind-host",
         "127.0.0.1", "--master-bind-port", port, "--expect-workers", "2", "--expect-workers-max-wait", "60",
         "-u", "4", "-r", "4", "-t", "8s", "--results-dir", str(results), "--loglevel", "WARNING"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    workers = []
    for index in range(2):
        home = tmp_path / f"worker{index}"
        (home / "tmp").mkdir(parents=True)
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", "-", "--worker", "--master-host", "127.0.0.1", "--master-port",
             port, "--loglevel", "WARNING"],
            cwd=home, env={**os.environ, "TMPDIR": str(home / "tmp")}, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True))
    try:
        output, _ = master.communicate(timeout=180)
        for worker in workers:
            worker.wait(30)
    finally:
        for proc in (master, *workers):
            kill_group(proc)
    assert master.returncode == 0, output
    run = read_run(results, master.returncode, output)
    assert_records_reconcile(run)
    assert sorted(w["index"] for w in run.info["workers"]) == [0, 1]
    assert {w["records_received"] > 0 for w in run.info["workers"]} == {True}
    assert set(run.records.workload) <= {"FollowUpChat", "Calculator"} and len(run.records) > 0
    assert run.info["hosts"][0]["embedded"] == "emulator"


def test_the_python_api_doc_shows_the_example_whole():
    """docs/python-api.md's locustfile is the example the tests above run, character for character."""
    doc = (REPO / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert EXAMPLE.read_text() in blocks


def test_the_public_api_is_small_and_named():
    assert sorted(loadgen.__all__) == [
        "AgentLoopUser", "BatchUser", "ChatUser", "LLMUser", "Scenario", "ScenarioError", "load_scenario"]
    for name in loadgen.__all__:
        assert getattr(loadgen, name).__doc__, name
    assert all(getattr(loadgen, name).abstract for name in ("AgentLoopUser", "BatchUser", "ChatUser", "LLMUser"))
