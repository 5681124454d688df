"""The analysis of a run directory that a crash left incomplete, or that a server filled with less than
usual: it reports what is there and says, in its notes (summary.json and the report's Data quality
section), what is missing. It never passes off its own failure as an SLO failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from analysis import cli
from analysis.cli import EXIT_BUG, main
from tests.analysis.helpers import record, served, write_run_dir

STARTED = 1000.0
INFO = {"run_id": "r1", "started_at": STARTED, "ended_at": STARTED + 30, "complete": True,
        "hosts": [{"name": "h1", "url": "http://h1:11434", "server": "ollama"}], "slo": {},
        "workers": [{"index": 0, "client_id": "box_a", "hostname": "box", "requests_sent": 20,
                     "records_received": 20, "vanished_at": None}]}


def intact_run(directory: Path) -> Path:
    """A finished run: 20 requests, one stage, run.json, and Locust's (empty) failures table."""
    rows = [served(STARTED + i, 0.0, 0.2, 1.0) for i in range(20)]
    write_run_dir(directory, rows, [{"stage": "c2", "users": 2, "t_begin": STARTED, "t_end": STARTED + 30}], INFO)
    (directory / "locust_failures.csv").write_text("Method,Name,Error,Occurrences\n")
    return directory


def cut_last_line(run: Path) -> None:
    path = run / "requests.csv"
    path.write_bytes(path.read_bytes()[:-25])


def killed_master(run: Path) -> None:
    """What a SIGKILLed master leaves: a cut last line, run.json from the start, no stage ended."""
    cut_last_line(run)
    (run / "run.json").write_text(json.dumps({**INFO, "ended_at": None, "complete": False, "workers": []}))
    (run / "stages.csv").write_text("stage,mode,users,rate,t_begin,t_end,warmup_s\n")


def half_written_run_json(run: Path) -> None:
    (run / "run.json").write_text(json.dumps(INFO)[:40])


def lost_worker(run: Path) -> None:
    worker = {"index": 1, "client_id": "box_b", "hostname": "box", "requests_sent": 9, "records_received": 7,
              "vanished_at": STARTED + 12.4}
    (run / "run.json").write_text(json.dumps({**INFO, "workers": [*INFO["workers"], worker]}))


def foreign_locust_stats(run: Path) -> None:
    """A locust_stats.csv the analysis cannot read (another Locust version's columns, or a stray file)."""
    (run / "locust_stats.csv").write_text("Type,Name\nE2E,chat\n")


DAMAGE: dict[str, tuple[Callable[[Path], None], int, list[str]]] = {
    # name: (what happened to the directory, requests the report counts, what the notes must say)
    "intact": (lambda run: None, 20, []),
    "cut last line": (cut_last_line, 19, ["requests.csv: dropped a truncated last line"]),
    "killed master": (killed_master, 19, ["dropped a truncated last line", "complete: false",
                                          "stages.csv missing or empty (no stage ended)"]),
    "no run.json": (lambda run: (run / "run.json").unlink(), 20, ["run.json missing"]),
    "half-written run.json": (half_written_run_json, 20, ["run.json unreadable"]),
    "no stages.csv": (lambda run: (run / "stages.csv").unlink(), 20, ["stages.csv missing or empty"]),
    "foreign Locust stats": (foreign_locust_stats, 20, ["locust_stats.csv: missing columns"]),
    "lost worker": (lost_worker, 20, ["worker 1 (box) vanished 12 s into the run",
                                      "worker 1 (box): 2 of the 9 requests it sent have no record"]),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_report_counts_what_is_there_and_notes_what_is_missing(tmp_path: Path, damage: str) -> None:
    harm, total, expected = DAMAGE[damage]
    run = intact_run(tmp_path / "run")
    harm(run)

    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["requests"]["total"] == total
    notes = summary["notes"]
    for text in expected:
        assert any(text in note for note in notes), notes
    assert len(notes) == len(expected), notes  # and nothing else: an empty failures table is normal
    report = (run / "report.md").read_text()
    assert all(note in report for note in notes)


def test_a_server_that_reports_no_timers_and_one_token_still_gets_a_report(tmp_path: Path) -> None:
    """As a time-to-first-token test (num_predict: 1) against a server without timings gives: no busy
    intervals, no speeds, so no slot estimate; the rest of the report stands."""
    rows = [record(t_start=STARTED + i, t_first_token=STARTED + i + 0.1, t_end=STARTED + i + 0.1, output_tokens=1)
            for i in range(20)]
    run = write_run_dir(tmp_path / "run", rows, None, INFO)
    assert main(["report", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["requests"]["total"] == 20


def test_a_failure_of_the_analysis_itself_exits_3_not_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Python's own exit code for an uncaught exception is 1, which reads as "an SLO failed"."""
    def broken(*args: object) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(cli, "analyze", broken)
    assert main(["report", str(intact_run(tmp_path / "run"))]) == EXIT_BUG == 3
    assert "IndexError: a bug" in capsys.readouterr().err
