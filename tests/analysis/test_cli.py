"""The CLI as a subprocess: exit 0 / 1 (SLO failed) / 2 (unusable input, one line, never a traceback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analysis.helpers import record, served, write_run_dir

pytestmark = pytest.mark.integration  # every test runs the CLI as a subprocess

LOCUST = Path(__file__).parent / "data" / "locust"
ROOT = Path(__file__).parents[2]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def small_run(directory: Path, slo: dict | None = None) -> Path:
    rows = [served(float(i), 0.0, 0.2, 2.0, user_id=i % 2) for i in range(20)]
    rows.append(record(t_start=21.0, t_end=21.1, status=503, error="busy_503"))
    stages = [{"stage": "c2", "users": 2, "t_begin": 0.0, "t_end": 30.0}]
    info = {"run_id": "x", "hosts": [{"name": "h1", "url": "http://h1:11434", "server": "ollama"}],
            "slo": slo or {"e2e_p95_s": 10.0}}
    return write_run_dir(directory, rows, stages, info)


def test_report_writes_three_files_and_passes(tmp_path):
    run = small_run(tmp_path / "run")
    result = cli("report", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["slo"]["failed"] is False
    assert summary["requests"]["n_503"] == 1
    html = (run / "report.html").read_text()
    assert "<svg" in html and "<script" not in html and "src=" not in html  # self-contained, no network
    assert "linear interpolation" in (run / "report.md").read_text()


def test_slo_failure_exits_1(tmp_path):
    run = small_run(tmp_path / "run", slo={"e2e_p95_s": 1.0})  # every e2e is 2.2 s
    result = cli("report", run)
    assert result.returncode == 1
    assert "e2e_p95_s" in result.stderr


def test_truncated_requests_csv_still_reports(tmp_path):
    run = small_run(tmp_path / "run")
    with (run / "requests.csv").open("a") as handle:
        handle.write("r1,0,1,s1,0,chat,chat,h1,ollama,/api/chat,m,1,,30.0,30.")  # a killed master's last line
    result = cli("report", run)
    assert result.returncode == 0, result.stderr
    notes = json.loads((run / "summary.json").read_text())["notes"]
    assert any("truncated" in n for n in notes)
    assert json.loads((run / "summary.json").read_text())["requests"]["total"] == 21


def write_requests(directory: Path, text: str | bytes) -> Path:
    directory.mkdir()
    path = directory / "requests.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return directory


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no request records"),
        ("run_id,worker,t_start\nr1,0,1.0\n", "missing columns"),
        ("a,b,c\n1,2,3\n", "missing columns"),
        (b"\xff\xfe\x00garbage\x00\n", "UTF-8"),
        ('workload,host,model,t_start,t_end,status,error\nchat,h,m,1,2,200,"unclosed\n', "not parseable as CSV"),
    ],
    ids=["empty", "wrong-columns", "other-csv", "binary", "broken-quote"],
)
def test_unusable_input_exits_2_with_one_line(tmp_path, content, message):
    result = cli("report", write_requests(tmp_path / "run", content))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_missing_directory_and_bad_slo_exit_2(tmp_path):
    assert cli("report", tmp_path / "nope").returncode == 2
    result = cli("report", small_run(tmp_path / "run"), "--slo", "latency=3")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_plain_locust_csvs_are_labelled_bucketed(tmp_path):
    shutil.copytree(LOCUST, tmp_path / "locust")
    result = cli("report", tmp_path / "locust" / "demo")
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "locust" / "report.md").read_text()
    assert "Locust's bucketed percentiles" in md
    summary = json.loads((tmp_path / "locust" / "summary.json").read_text())
    assert summary["source"] == "locust"
    assert summary["percentile_method"].startswith("Locust's bucketed percentiles")


def test_compare_writes_side_by_side(tmp_path):
    a, b = small_run(tmp_path / "a"), small_run(tmp_path / "b")
    result = cli("compare", a, b, "--out", tmp_path / "cmp")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["a", "b"]
    assert (tmp_path / "cmp" / "compare.html").exists()
