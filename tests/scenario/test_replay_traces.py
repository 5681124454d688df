"""Trace readers: each format read from a small file, Azure's two timestamp forms, and every malformed
row or file refused in one line naming the trace file, its line and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from loadgen.scenario.scenario import ScenarioError, check, load_scenario
from loadgen.scenario.traces import azure, mooncake, requests_csv
from loadgen.scenario.traces.rows import BadRow, TraceRow, Unsized

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
REQUESTS_HEADER = "session_id,step,t_scheduled,t_start,t_end,prompt_tokens,output_tokens,workload,model\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def replay_scenario(tmp_path: Path, trace: str, format: str, **load: object) -> Path:
    """A scenario file beside ``trace`` that replays it; ``load`` adds keys to the load mapping."""
    extra = "".join(f"\n  {key}: {value}" for key, value in load.items())
    return write(tmp_path, "scenario.yaml", f"name: t\nmodel: m\nworkloads: [{{name: w, kind: chat}}]\n"
                                            f"load:\n  shape: replay\n  file: {trace}\n  format: {format}{extra}\n")


def test_azure_timestamps_in_both_forms():
    base = dt.datetime(2023, 11, 16, 18, 17, 3, tzinfo=dt.UTC).timestamp()
    # 2023 files: seven fractional digits, no zone (read as UTC).
    assert azure.parse_timestamp("2023-11-16 18:17:03.9799600") == pytest.approx(base + 0.97996, abs=1e-6)
    # 2024 files: six digits and +00:00, or no fraction at all; another offset is honoured.
    assert azure.parse_timestamp("2023-11-16 18:17:03.009930+00:00") == pytest.approx(base + 0.00993, abs=1e-6)
    assert azure.parse_timestamp("2023-11-16 18:17:03+00:00") == base
    assert azure.parse_timestamp("2023-11-16 20:17:03+02:00") == base
    assert azure.parse_timestamp("2023-11-16T18:17:03Z") == base


@pytest.mark.parametrize("text", ["2023-11-16 18:17", "16/11/2023 18:17:03", "2023-02-30 00:00:00", ""])
def test_azure_timestamp_refused(text: str):
    with pytest.raises(ValueError):
        azure.parse_timestamp(text)


def test_azure_rows(tmp_path: Path):
    path = write(tmp_path, "a.csv", AZURE_HEADER + "2024-05-10 00:00:00.009930+00:00,374,44\n\n"
                                    "2024-05-10 00:00:01+00:00,396,109\n")
    rows = list(azure.read(path))
    assert [(r.line, r.input_tokens, r.output_tokens, r.session) for r in rows] == [(2, 374, 44, ""), (4, 396, 109, "")]
    assert isinstance(rows[0], TraceRow) and isinstance(rows[1], TraceRow)
    assert rows[1].time - rows[0].time == pytest.approx(1 - 0.00993, abs=1e-6)


def test_requests_csv_rows(tmp_path: Path):
    path = write(tmp_path, "requests.csv", REQUESTS_HEADER
                 + "0-1-1,0,1000.5,1000.75,1002.0,60,12,chat,llama3.2:1b\n"  # an arrival: its due time counts
                 + "0-1-1,1,,1003.0,1004.0,90,8,chat,llama3.2:1b\n"  # a later turn: its start time
                 + "0-2-2,0,,1001.0,1031.0,,,chat,llama3.2:1b\n")  # timed out: no token counts
    first, second, failed = requests_csv.read(path)
    assert first == TraceRow(2, 1000.5, 60, 12, "0-1-1", 0, 1002.0, (), "chat", "llama3.2:1b")
    assert isinstance(second, TraceRow) and (second.time, second.step, second.input_tokens) == (1003.0, 1, 90)
    assert failed == Unsized(4)


def test_mooncake_rows_and_sessions(tmp_path: Path):
    path = write(tmp_path, "t.jsonl",
                 '{"timestamp": 0, "input_length": 600, "output_length": 20, "hash_ids": [7, 8]}\n'
                 '{"timestamp": 1500, "input_length": 100, "output_length": 5, "session_id": "a"}\n'
                 '{"timestamp": 2500, "input_length": 300, "output_length": 5, "session_id": "a"}\n')
    rows = list(mooncake.read(path))
    assert rows[0] == TraceRow(1, 0.0, 600, 20, blocks=(7, 8))
    assert [(r.time, r.session, r.step) for r in rows[1:] if isinstance(r, TraceRow)] == [(1.5, "a", 0), (2.5, "a", 1)]


MALFORMED = [
    # (format, file name, text, line, field, part of the message)
    ("azure", "a.csv", AZURE_HEADER + "2023-11-16 18:17:03.9799600,1,2\n2023-11-16 18:17,1,2\n", 3, "TIMESTAMP",
     "must be a time like"),
    ("azure", "a.csv", AZURE_HEADER + "2023-02-30 00:00:00,1,2\n", 2, "TIMESTAMP", "is not a valid time"),
    ("azure", "a.csv", AZURE_HEADER + "2023-11-16 18:17:03,abc,2\n", 2, "ContextTokens", "must be a number, got 'abc'"),
    ("azure", "a.csv", AZURE_HEADER + "2023-11-16 18:17:03,12,-5\n", 2, "GeneratedTokens",
     "must be a whole number >= 0, got '-5'"),
    ("azure", "a.csv", AZURE_HEADER + "2023-11-16 18:17:03,12\n", 2, None, "has 2 fields, the header 3"),
    ("azure", "a.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:17:03,12\n", 1, None,
     "the header has no column 'GeneratedTokens'"),
    ("mooncake", "t.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1,\n', 2, None,
     "not valid JSON"),
    ("mooncake", "t.jsonl", '{"timestamp": 0, "output_length": 1}\n', 1, "input_length", "is required"),
    ("mooncake", "t.jsonl", '{"timestamp": "soon", "input_length": 5, "output_length": 1}\n', 1, "timestamp",
     "must be a number"),
    ("mooncake", "t.jsonl", '{"timestamp": 0, "input_length": 1025, "output_length": 1, "hash_ids": [1, 2]}\n', 1,
     "hash_ids", "has 2 ids, but input_length 1025 makes 3 blocks of 512 tokens"),
    ("mooncake", "t.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": "1"}\n', 1, "hash_ids",
     "must be a list of whole numbers"),
    ("mooncake", "t.jsonl", '[1, 2]\n', 1, None, "must be an object with timestamp"),
    ("requests_csv", "r.csv", REQUESTS_HEADER + "s,-1,,1.0,2.0,5,5,w,m\n", 2, "step", "must be a whole number >= 0"),
    ("requests_csv", "r.csv", REQUESTS_HEADER + "s,0,,,2.0,5,5,w,m\n", 2, "t_start", "must be a number, got ''"),
    ("requests_csv", "r.csv", REQUESTS_HEADER + "s,0,,1.0,2.0,5.5,5,w,m\n", 2, "prompt_tokens", "got '5.5'"),
    ("requests_csv", "r.csv", "session_id,step,t_start,t_end,output_tokens\ns,0,1.0,2.0,5\n", 1, None,
     "the header has no column 'prompt_tokens'"),
]


@pytest.mark.parametrize(("format", "name", "text", "line", "field", "expect"), MALFORMED,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(MALFORMED)])
def test_a_malformed_trace_is_refused_in_one_line(tmp_path: Path, format: str, name: str, text: str, line: int,
                                                  field: str | None, expect: str):
    trace = write(tmp_path, name, text)
    scenario = replay_scenario(tmp_path, name, format)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    message = str(caught.value)
    assert "\n" not in message and len(caught.value.problems) == 1
    assert message.startswith(f"{scenario}:6:3: load.file: {trace}:{line}: " + (f"{field}: " if field else "")), message
    assert expect in message


def test_the_command_line_check_prints_the_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    trace = write(tmp_path, "a.csv", AZURE_HEADER + "2023-11-16 18:17:03,x,2\n")
    assert check(replay_scenario(tmp_path, "a.csv", "azure")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{trace}:2: ContextTokens: must be a number, got 'x'" in err


def test_skip_bad_skips_and_counts_malformed_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write(tmp_path, "a.csv", AZURE_HEADER + "2023-11-16 18:17:03,x,2\n2023-11-16 18:17:04,10,2\nnonsense,1,1\n")
    scenario = replay_scenario(tmp_path, "a.csv", "azure", skip_bad="true")
    replay = load_scenario(scenario).load
    assert replay.summary is not None and (replay.summary.bad, replay.summary.kept) == (2, 1)
    assert check(scenario) == 0
    assert capsys.readouterr().out == ("ok: t (1 workload; replay: 1 of 1 requests kept (0 outside the window, 0 over "
                                       "max_requests, 2 bad rows skipped, 0 without sizes))\n")


@pytest.mark.parametrize(("text", "load", "path", "expect"), [
    ("", {}, "load.file", "is empty"),
    (AZURE_HEADER, {}, "load.file", "has no request to replay"),
    (AZURE_HEADER + "2023-11-16 18:17:03,10,2\n2023-11-16 18:17:09,10,2\n", {"window": "{start: 7s, end: 9s}"},
     "load.window", "no request of"),
    (AZURE_HEADER + "2023-11-16 18:17:03,10,2\n", {"window": "{start: 9s, end: 7s}"}, "load.window.end",
     "must be after start (9s), got 7s"),
    (AZURE_HEADER + "2023-11-16 18:17:03,10,2\n", {"warmup": 1}, "load.warmup", "a replay takes no warm-up"),
    (AZURE_HEADER + "2023-11-16 18:17:03,10,2\n", {"speed": 0}, "load.speed", "must be > 0"),
])
def test_a_replay_with_nothing_to_send_or_a_bad_setting_is_refused(tmp_path: Path, text: str, load: dict[str, object],
                                                                   path: str, expect: str):
    write(tmp_path, "a.csv", text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(replay_scenario(tmp_path, "a.csv", "azure", **load))
    (problem,) = caught.value.problems
    assert problem.path == path and expect in problem.message, str(caught.value)


def test_a_missing_trace_file_names_the_file(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"load\.file: trace file not found: .*nowhere\.csv"):
        load_scenario(replay_scenario(tmp_path, "nowhere.csv", "azure"))


def test_the_format_names_the_choices(tmp_path: Path):
    write(tmp_path, "a.csv", AZURE_HEADER)
    expect = "load.format: must be one of requests_csv, azure, mooncake, got 'burstgpt'"
    with pytest.raises(ScenarioError, match=expect):
        load_scenario(replay_scenario(tmp_path, "a.csv", "burstgpt"))


def test_bad_rows_are_values_not_exceptions(tmp_path: Path):
    # A reader goes on after a bad row: skip_bad needs the rows after it.
    path = write(tmp_path, "a.csv", AZURE_HEADER + "x,1,1\n2023-11-16 18:17:03,10,2\n")
    bad, good = azure.read(path)
    assert isinstance(bad, BadRow) and bad.field == "TIMESTAMP" and isinstance(good, TraceRow)
