"""A capacity search's answer in the report: capacity.json read with the run, summary.json's ``capacity``, the
probe table, the chart of the limiting SLO with its threshold, each host's share at capacity, the advice, the
comparison, and the exit code (the gate, not the run-wide SLO verdict, which the probes beyond capacity break
by design)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis.analyze import analyze
from analysis.capacity_result import host_shares, limiting_curve, parse_capacity, probe_table
from analysis.compare import build_compare, compare_summary
from analysis.document import Heading, Table, Text
from analysis.errors import InputError
from analysis.load import load_run
from analysis.render_md import render_md
from analysis.report import build_report, figures
from analysis.summary import summary
from tests.analysis.helpers import advice_on, record, run_of, uniform_sweep, write_run_dir

ROOT = Path(__file__).parents[2]
SPACING = 100.0  # each probe's stage is 100 s long, the first 10 s of it warm-up
WARMUP = 10.0
LINE = "capacity: 6 users (6 passed: e2e p95 17.2 s <= 20 s; 7 failed: e2e p95 23 s > 20 s)"
INFO = {"run_id": "cap", "slo": {"e2e_p95_s": 20.0},
        "hosts": [{"name": "h1", "url": "http://h1:11434", "server": "ollama"},
                  {"name": "h2", "url": "http://h2:11434", "server": "ollama"}]}


def probe(stage: str, users: int, verdict: str, observed: float, low: float, high: float, n: int = 40,
          early_stop: str = "", repeat: int = 0) -> dict[str, Any]:
    """A probe as capacity.json writes it, judged on e2e p95 <= 20 s alone."""
    return {"stage": stage, "users": users, "repeat": repeat, "requests": n, "verdict": verdict,
            "passed": verdict != "fail" and observed <= 20 and not early_stop, "early_stop": early_stop,
            "checks": [{"workload": "chat", "slo": "e2e_p95_s", "threshold": 20.0, "observed": observed, "low": low,
                        "high": high, "n": n, "verdict": verdict}]}


# The search: up by doubling (1, 2, 4 pass, 8 fails early), then bisecting (6 passes; 7 too close to call,
# repeated, then fails on both runs' requests together): capacity 6 users.
PROBES = [
    probe("cap1-u1", 1, "pass", 4.0, 3.9, 4.2),
    probe("cap2-u2", 2, "pass", 6.0, 5.8, 6.3),
    probe("cap3-u4", 4, "pass", 11.0, 10.6, 11.5),
    probe("cap4-u8", 8, "fail", 31.0, 29.0, 33.0, n=12, early_stop="clearly failed: e2e p95 31 s > 20 s"),
    probe("cap5-u6", 6, "pass", 17.2, 16.1, 18.4),
    probe("cap6-u7", 7, "close", 20.3, 19.2, 21.5),
    probe("cap7-u7-again", 7, "fail", 23.0, 21.4, 24.6, n=80, repeat=1),
]


def capacity(**changes: Any) -> dict[str, Any]:
    """capacity.json of the search above."""
    return {"unit": "users", "value": 6, "last_pass": 6, "first_fail": 7, "limiting": "e2e_p95_s",
            "limiting_workload": "chat", "outcome": "found", "bound": 64, "confidence": 0.9, "min": None,
            "passed_gate": None, "last_pass_text": "e2e p95 17.2 s <= 20 s", "first_fail_text": "e2e p95 23 s > 20 s",
            "probes": PROBES, **changes}


def stages() -> list[dict[str, Any]]:
    return [{"stage": p["stage"], "mode": "capacity", "users": p["users"], "t_begin": i * SPACING,
             "t_end": (i + 1) * SPACING, "warmup_s": WARMUP} for i, p in enumerate(PROBES)]


def records() -> list[dict[str, Any]]:
    """In every probe's stage, one warm-up request per host and then requests of the probe's observed e2e.

    In cap5-u6 (the last passing level) h1 serves 6 measured requests and h2 3, plus a request the run
    cancelled: shares 6/9 and 3/9. Elsewhere each host serves 2. The probes at 7 and 8 users take 23 and 31 s,
    beyond 20 s, so the run-wide e2e p95 fails."""
    rows = []
    for i, p in enumerate(PROBES):
        t0, e2e = i * SPACING, p["checks"][0]["observed"]
        rows += [record(t_start=t0 + 1, t_end=t0 + 1 + e2e, host=h) for h in ("h1", "h2")]  # warm-up
        counts = {"h1": 6, "h2": 3} if p["stage"] == "cap5-u6" else {"h1": 2, "h2": 2}
        rows += [record(t_start=t0 + WARMUP + 1 + k, t_end=t0 + WARMUP + 1 + k + e2e, host=host, user_id=k)
                 for host, count in counts.items() for k in range(count)]
    rows.append(record(t_start=4 * SPACING + 50, t_end=4 * SPACING + 51, host="h2", status=0, error="cancelled"))
    return rows


def capacity_run(**changes: Any):
    return run_of(records(), stages(), info=INFO, capacity=capacity(**changes))


# --- summary.json ----------------------------------------------------------------------------------------------
def test_summary_holds_the_answer_and_every_probe():
    out = summary(analyze(capacity_run()))
    json.dumps(out, allow_nan=False)  # as the CLI writes it
    c = out["capacity"]
    assert (c["unit"], c["value"], c["last_pass"], c["first_fail"], c["limiting"], c["outcome"]) == \
        ("users", 6, 6, 7, "e2e_p95_s", "found")
    assert (c["min"], c["passed_gate"], c["line"]) == (None, None, LINE)
    assert [(p["stage"], p["users"], p["requests"], p["verdict"]) for p in c["probes"]] == \
        [(p["stage"], p["users"], p["requests"], p["verdict"]) for p in PROBES]
    assert c["probes"][3]["early_stop"] == "clearly failed: e2e p95 31 s > 20 s"
    measured = c["probes"][4]["checks"][0]
    assert (measured["observed"], measured["low"], measured["high"], measured["threshold"]) == (17.2, 16.1, 18.4, 20)


def test_a_run_without_a_search_has_no_capacity():
    out = summary(analyze(run_of(records(), stages(), info=INFO)))
    assert out["capacity"] is None


# --- the probe table, the chart, the shares --------------------------------------------------------------------
def test_probe_table_shows_each_probes_deciding_check_against_its_threshold():
    table = probe_table(parse_capacity(capacity()))
    assert list(table.columns) == ["stage", "users", "requests", "verdict", "passed", "check", "observed",
                                   "interval", "threshold", "early_stop"]
    rows = table.to_dict("records")
    assert rows[4] == {"stage": "cap5-u6", "users": 6, "requests": 40, "verdict": "pass", "passed": True,
                       "check": "e2e_p95_s", "observed": 17.2, "interval": "16.1-18.4", "threshold": 20.0,
                       "early_stop": "-"}
    assert (rows[3]["verdict"], rows[3]["passed"], rows[3]["early_stop"]) == \
        ("fail", False, "clearly failed: e2e p95 31 s > 20 s")
    assert [r["verdict"] for r in rows[5:]] == ["close", "fail"]


def test_the_chart_plots_the_limiting_slo_per_level_with_the_last_probe_of_a_repeated_level():
    curve = limiting_curve(parse_capacity(capacity()))
    # Sorted by level; 7 users shows its repeat (23 s, judged on both runs), not the first close call (20.3 s).
    assert curve["level"].tolist() == [1, 2, 4, 6, 7, 8]
    assert curve["observed"].tolist() == [4.0, 6.0, 11.0, 17.2, 23.0, 31.0]
    assert set(curve["threshold"]) == {20.0}


def test_report_has_a_capacity_section_above_the_slo_verdict_with_its_chart_and_threshold():
    doc = build_report(analyze(capacity_run()))
    headings = [b.text for b in doc.blocks if isinstance(b, Heading)]
    assert headings.index("Capacity") == 1 and headings.index("SLO verdict") == 2
    start = doc.blocks.index(Heading("Capacity"))
    assert doc.blocks[start + 1] == Text(LINE)
    (chart,) = [f for f in figures(doc) if "e2e_p95_s against users" in f.svg]
    assert doc.blocks.index(chart) < doc.blocks.index(Heading("SLO verdict"))
    # The threshold as a horizontal dashed rule across the plot (x 60 to 640 - 16), and the capacity as a
    # vertical one.
    assert 'x1="60" y1="' in chart.svg and 'x2="624"' in chart.svg and ">SLO 20</text>" in chart.svg
    assert ">capacity 6</text>" in chart.svg
    markdown = render_md(doc)
    assert LINE in markdown
    assert "| cap5-u6 | 6 | 40 | pass | yes | e2e_p95_s | 17.2 | 16.1-18.4 | 20 | - |" in markdown
    assert "break the SLOs by design" in markdown  # the run-wide verdict says it is not the run's verdict


def test_each_hosts_share_of_the_requests_at_the_last_passing_level():
    a = analyze(capacity_run())
    # cap5-u6 outside its warm-up: h1 6 requests, h2 3 (its cancelled one left out), other probes not counted.
    assert a.capacity_shares.to_dict("records") == [{"host": "h1", "requests": 6, "share": pytest.approx(6 / 9)},
                                                    {"host": "h2", "requests": 3, "share": pytest.approx(3 / 9)}]
    tables = [b for b in build_report(a).blocks if isinstance(b, Table) and "share" in b.frame.columns]
    assert len(tables) == 1 and "at 6 users" in tables[0].caption


def test_a_host_that_got_nothing_at_capacity_shows_zero_and_one_host_shows_no_table():
    run = capacity_run()
    assert host_shares(run.records, parse_capacity(capacity()), ["h0", "h1", "h2"])["requests"].tolist() == [0, 6, 3]
    one = [r for r in records() if r["host"] == "h1"]
    a = analyze(run_of(one, stages(), info={**INFO, "hosts": INFO["hosts"][:1]}, capacity=capacity()))
    assert not [b for b in build_report(a).blocks if isinstance(b, Table) and "share" in b.frame.columns]


def test_a_rate_search_keys_its_probes_by_rate():
    rate_probes = [{**{k: v for k, v in p.items() if k != "users"}, "rate": p["users"] / 2} for p in PROBES]
    result = parse_capacity(capacity(unit="req/s", value=3.0, last_pass=3.0, first_fail=3.5, probes=rate_probes))
    assert probe_table(result)["rate"].tolist() == [0.5, 1.0, 2.0, 4.0, 3.0, 3.5, 3.5]
    assert result.line.startswith("capacity: 3 req/s (3 passed")
    assert result.to_json()["probes"][0]["rate"] == 0.5


# --- exit codes ------------------------------------------------------------------------------------------------
def test_slo_failures_beyond_capacity_do_not_fail_a_capacity_run():
    a = analyze(capacity_run())
    assert a.slo_failed  # 7 and 8 users broke e2e p95 <= 20 s, as a search's probes beyond capacity do
    assert not a.failed  # no gate: nothing to fail
    without_search = analyze(run_of(records(), stages(), info=INFO))
    assert without_search.failed  # the same records in any other run fail on the SLO


@pytest.mark.parametrize(("file_min", "override", "failed"), [
    (8, None, True),  # the file's gate: 6 < 8
    (6, None, False),  # 6 >= 6
    (8, 5, False),  # --capacity-min overrides the file's gate
    (None, 6.5, True),
])
def test_the_gate_decides_a_capacity_run(file_min, override, failed):
    a = analyze(capacity_run(min=file_min), capacity_min=override)
    assert a.failed is failed
    gate = summary(a)["capacity"]
    assert (gate["min"], gate["passed_gate"]) == (override if override is not None else file_min, not failed)


def test_a_gate_without_a_search_is_unusable_input():
    with pytest.raises(InputError, match="capacity gate needs a capacity search"):
        analyze(run_of(records(), stages(), info=INFO), capacity_min=4)


# --- advice and compare ----------------------------------------------------------------------------------------
def test_the_slo_advice_states_the_capacity_instead_of_the_highest_level():
    rows, sweep_stages = uniform_sweep()  # e2e 1.25 s at 1 and 2, up to 2.5 s at 4
    info = {"slo": {"e2e_p95_s": 10.0}}
    assert advice_on(run_of(rows, sweep_stages, info=info), "slo") == \
        ["m@h1: the highest measured concurrency meeting e2e_p95_s <= 10 is 4"]
    assert advice_on(run_of(rows, sweep_stages, info=info, capacity=capacity()), "slo") == \
        [f"the capacity search's answer, for the whole fleet within the SLOs: {LINE}"]


def test_compare_shows_each_runs_capacity():
    analyses = [analyze(capacity_run()), analyze(run_of(records(), stages(), info=INFO))]
    assert LINE in render_md(build_compare(analyses))
    runs = compare_summary(analyses)["runs"]
    assert runs[0]["capacity"] == {"unit": "users", "value": 6, "outcome": "found", "limiting": "e2e_p95_s",
                                   "min": None, "passed_gate": None, "line": LINE}
    assert runs[1]["capacity"] is None


# --- reading capacity.json -------------------------------------------------------------------------------------
def capacity_dir(directory: Path, content: str | None) -> Path:
    write_run_dir(directory, records(), stages(), INFO)
    if content is not None:
        (directory / "capacity.json").write_text(content)
    return directory


def test_capacity_json_is_read_with_the_run(tmp_path):
    run = load_run(capacity_dir(tmp_path / "run", json.dumps(capacity())))
    assert run.capacity == capacity()
    assert load_run(capacity_dir(tmp_path / "plain", None)).capacity is None


@pytest.mark.parametrize(("content", "message"), [
    ("", "not valid JSON"),
    ('{"unit": "users",', "not valid JSON"),
    ("[]", "expected a JSON object, got list"),
    (json.dumps({**capacity(), "unit": "tokens"}), "unit 'tokens'"),
    (json.dumps({k: v for k, v in capacity().items() if k != "probes"}), "probes missing"),
    (json.dumps(capacity(value="6")), "value: expected a number, got str"),
    (json.dumps(capacity(value=True)), "value: expected a number, got bool"),
    (json.dumps(capacity(probes=[{**PROBES[0], "verdict": "maybe"}])), "probes[0].verdict 'maybe'"),
    (json.dumps(capacity(probes=[{**PROBES[0], "checks": [{"slo": "e2e_p95_s"}]}])), "probes[0].checks[0].workload"),
    (json.dumps(capacity(probes=[{k: v for k, v in PROBES[0].items() if k != "users"}])), "probes[0].users missing"),
])
def test_a_malformed_capacity_json_is_one_line_of_unusable_input(tmp_path, content, message):
    with pytest.raises(InputError) as caught:
        load_run(capacity_dir(tmp_path / "run", content))
    text = str(caught.value)
    assert "capacity.json" in text and message in text and "\n" not in text


# --- the command line ------------------------------------------------------------------------------------------
def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.mark.integration  # runs the CLI as a subprocess
def test_report_exits_on_the_gate_and_prints_the_capacity(tmp_path):
    run = capacity_dir(tmp_path / "run", json.dumps(capacity()))
    passed = cli(run)
    assert passed.returncode == 0, passed.stderr  # the run-wide SLO failed, by design
    assert LINE in passed.stdout.splitlines()
    assert json.loads((run / "summary.json").read_text())["slo"]["failed"] is True

    short = cli(run, "--capacity-min", "8")
    assert short.returncode == 1
    assert "capacity below the gate in run: 6 users < 8" in short.stderr

    (run / "capacity.json").write_text(json.dumps(capacity(min=7)))
    assert cli(run).returncode == 1  # the gate the search wrote
    assert cli(run, "--capacity-min", "6").returncode == 0

    (run / "capacity.json").write_text('{"unit": "users"')
    broken = cli(run)
    assert broken.returncode == 2
    assert broken.stderr.count("\n") == 1 and "capacity.json: not valid JSON" in broken.stderr
    assert "Traceback" not in broken.stderr
