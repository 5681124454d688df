"""The corpus of malformed scenarios: each one fails with exactly one problem, in plain words, at the
line and field its header names.

Each file in ``bad/`` starts with ``# expect: <part of the message>`` and, where meaningful,
``# line: N`` (the line the message must name) and ``# field: <dotted path>``.
"""

import pickle
import re
from pathlib import Path

import pytest

from loadgen.scenario.scenario import ScenarioError, load_scenario

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def header(path: Path, key: str) -> str | None:
    """The value of a corpus file's ``# key: value`` header line, if it has one."""
    match = re.search(rf"^# {key}: (.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else None


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 35


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_malformed_scenario_gives_one_clear_error(path: Path):
    expect, line, field = header(path, "expect"), header(path, "line"), header(path, "field")
    assert expect, f"{path.name} has no '# expect:' header"

    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)

    message = str(caught.value)
    assert len(caught.value.problems) == 1, message
    problem = caught.value.problems[0]
    assert message.startswith(f"{path}:"), message
    assert expect in message
    assert "\n" not in message
    assert "Traceback" not in message and "pydantic" not in message and "For further information" not in message
    if line is not None:
        assert problem.mark is not None and problem.mark.line == int(line), message
        assert message.startswith(f"{path}:{line}:"), message
    if field is not None:
        assert problem.path == field, message
        assert f": {field}: " in message


def test_several_problems_are_listed_one_per_line(tmp_path: Path):
    path = tmp_path / "two.yaml"
    path.write_text("name: x\nmodel: m\nworkloads:\n  - {name: a, kind: chat, users: 0}\nload: {users: -1}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 2 problems:"
    assert lines[1] == f"  {path}:4:27: workloads[0].users: must be >= 1, got 0"
    assert lines[2] == f"  {path}:5:8: load.users: must be >= 1, got -1"


def test_a_missing_scenario_file_is_named(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"nowhere\.yaml: no such scenario file$"):
        load_scenario(tmp_path / "nowhere.yaml")


def test_scenario_errors_survive_pickling():
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BAD / "load-users-zero.yaml")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.problems) == (str(caught.value), caught.value.problems)
