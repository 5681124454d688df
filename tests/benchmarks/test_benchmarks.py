"""Smoke runs of the benchmark scripts with tiny parameters: each runs to the end and prints its
Markdown table with the expected columns and sane figures (no absolute times: figures are compared
with each other or bounded by what they count)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

pytestmark = pytest.mark.integration


def run(script: str, *args: str, timeout: float = 240) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tables(output: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``output``, as rows keyed by the header."""
    found, lines = [], output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = cells(line)
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append(dict(zip(header, cells(body), strict=True)))
            found.append(rows)
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(cell: str) -> float:
    """``12.3 ms``, ``45%`` or ``678`` as a float; ``n/a`` as NaN."""
    head = cell.split()[0].rstrip("%")
    return math.nan if head == "n/a" else float(head)


def test_overhead_measures_ttft_error_cpu_and_capacity() -> None:
    output = run("overhead.py", "--levels", "1,8", "--capacity-levels", "12", "--capacity-processes", "1",
                 "--ramp", "1.5", "--window", "2.5")  # fmt: skip
    overhead, capacity = tables(output)
    assert [r["users"] for r in overhead] == ["1", "8"]
    assert [r["users"] for r in capacity] == ["12"]
    for row in overhead + capacity:
        assert number(row["requests sent in window"]) > 0
        assert number(row["TTFT error p50"]) <= number(row["TTFT error p99"])
        assert 0 <= number(row["busiest worker CPU"]) <= 100
        assert number(row["streams held"]) <= number(row["users"]) + 0.5
        assert row["errors"] == "0"
    assert capacity[0]["within goal"] in ("yes", "no")
    assert "capacity with 1 worker process(es)" in output


def test_peer_runs_ours_and_the_http_tools_and_says_what_it_skipped(tmp_path: Path) -> None:
    output = run("peer.py", "--emulator-levels", "2", "--llamacpp-levels", "", "--ramp", "1", "--window", "2.5",
                 "--raw-concurrency", "4", "--tps", "100", "--guidellm", str(tmp_path / "no-guidellm"))  # fmt: skip
    streaming, raw = tables(output)
    assert [(r["target"], r["streams"], r["tool"]) for r in streaming] == [("emulator", "2", "ours")]
    assert number(streaming[0]["req/s"]) > 0
    assert number(streaming[0]["TTFT error p50"]) <= number(streaming[0]["TTFT error p99"])
    assert "GuideLLM skipped" in output
    tools = {r["tool"]: r for r in raw}
    assert set(tools) == {"ours (1 worker process)", "hey", "wrk", "ab"}
    assert number(tools["ours (1 worker process)"]["req/s"]) > 0
    for name in ("hey", "wrk", "ab"):  # each ran, or was skipped with a note
        assert number(tools[name]["req/s"]) > 0 or tools[name]["note"]


@pytest.mark.skipif(not (BENCHMARKS / ".venv-guidellm" / "bin" / "guidellm").exists(),
                    reason="GuideLLM is not installed in benchmarks/.venv-guidellm")  # fmt: skip
def test_peer_runs_guidellm_side_by_side() -> None:
    output = run("peer.py", "--emulator-levels", "2", "--llamacpp-levels", "", "--ramp", "1", "--window", "4",
                 "--raw-concurrency", "2", "--tps", "100", timeout=400)  # fmt: skip
    streaming = tables(output)[0]
    assert [r["tool"] for r in streaming] == ["ours", "guidellm"]
    assert all(number(r["req/s"]) > 0 for r in streaming)


def test_hot_paths_times_each_path() -> None:
    rows = tables(run("hot_paths.py", "--scale", "0.02"))[0]
    assert len(rows) == 10
    assert all(number(r["µs"]) > 0 for r in rows)


def test_emulator_capacity_reports_its_timing_error() -> None:
    output = run("emulator_capacity.py", "--levels", "20", "--duration", "4", "--warmup", "1.5", "--clients", "1",
                 "--tps", "50", "--tokens", "10")  # fmt: skip
    row = tables(output)[0][0]
    assert row["concurrent streams"] == "20"
    assert number(row["requests in window"]) > 0
    assert number(row["decode error p50 / p99"]) <= number(row["decode error p50 / p99"].split("/")[1])


def test_analysis_1m_reports_time_and_memory(tmp_path: Path) -> None:
    output = run("analysis_1m.py", "--records", "20000", "--dir", str(tmp_path / "run"))
    summary = output.strip().splitlines()[-1]
    assert summary.startswith("report on ") and "wall, peak RSS" in summary
    assert summary.endswith(("exit 0", "exit 1"))  # 1: an SLO of the synthetic run failed, as it may
