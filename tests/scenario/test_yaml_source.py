"""Positions recorded while parsing YAML, and where a validation-error location lands."""

import pytest

from loadgen.scenario.yaml_source import Mark, YamlSyntaxError, parse_yaml

TEXT = """\
name: x
load:
  users: 3
levels: [1, 2, 4]
defaults: &base
  temperature: 0.5
options:
  <<: *base
  seed: 1
"""


def test_present_keys_and_items_point_at_themselves():
    source = parse_yaml(TEXT)
    assert source.locate(("load", "users")) == (Mark(3, 3), ("load", "users"))
    assert source.locate(("levels", 2)) == (Mark(4, 16), ("levels", 2))


def test_a_missing_key_points_at_the_key_that_holds_its_parent():
    source = parse_yaml(TEXT)
    assert source.locate(("load", "duration")) == (Mark(2, 1), ("load", "duration"))


def test_union_tags_are_skipped():
    source = parse_yaml(TEXT)
    assert source.locate(("load", "<steady>", "users")) == (Mark(3, 3), ("load", "users"))


def test_merged_keys_point_at_their_anchor():
    source = parse_yaml(TEXT)
    assert source.data["options"] == {"temperature": 0.5, "seed": 1}
    assert source.locate(("options", "temperature")) == (Mark(6, 3), ("options", "temperature"))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\na: 2\n", 2, "duplicate key 'a' (first written on line 1)"),
        ("a:\n\t- 1\n", 2, "YAML indents with spaces, never tabs"),
        ("a: [1, 2\nb: 3\n", 2, "which starts on line 1"),
        ("a: *nowhere\n", 1, "found undefined alias"),
    ],
)
def test_syntax_errors_name_the_line(text, line, message):
    with pytest.raises(YamlSyntaxError) as caught:
        parse_yaml(text)
    assert caught.value.mark.line == line
    assert message in caught.value.message
