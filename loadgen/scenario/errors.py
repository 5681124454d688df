"""Scenario errors as users read them: ``file:line:col: field.path: what was expected, got what``.

Validators raise ``FieldProblem`` (a ``ValueError`` that may point below the value it checks); pydantic
collects them with its own errors, and ``problems_from`` turns the lot into ``Problem`` lines, placed
on the YAML source with ``SourceMap``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from loadgen.scenario.yaml_source import Mark, SourceMap, is_tag

_MAX_SHOWN = 12


class FieldProblem(ValueError):
    """A problem found by a validator. ``path`` leads from the validated value to the offending field."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, where it is written and what is wrong with it."""

    file: str
    mark: Mark | None
    path: str  # dotted field path, e.g. ``workloads[1].turns``; empty for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.mark.line}:{self.mark.column}" if self.mark else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario that cannot be loaded. ``str()`` is one line per problem, ready to print."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self._render())

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[tuple[Problem, ...]]]:
        return ScenarioError, (self.problems,)

    @classmethod
    def single(cls, file: str, message: str, mark: Mark | None = None, path: str = "") -> ScenarioError:
        """An error with one problem."""
        return cls([Problem(file, mark, path, message)])

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        shown = [f"  {problem}" for problem in self.problems[:_MAX_SHOWN]]
        if len(self.problems) > _MAX_SHOWN:
            shown.append(f"  ... and {len(self.problems) - _MAX_SHOWN} more")
        return "\n".join([f"{self.problems[0].file}: {len(self.problems)} problems:", *shown])


def format_path(path: Iterable[Any]) -> str:
    """``('workloads', 1, 'turns')`` -> ``workloads[1].turns``."""
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else (f".{element}" if text else str(element))
    return text


def show(value: Any) -> str:
    """A short rendering of a user's value for a message, in YAML's words."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


@contextmanager
def file_problems(path: Path, what: str) -> Iterator[None]:
    """Reading a data file the scenario names (``what``: "prompt file"): a failure becomes a ``FieldProblem``
    on its ``file`` key."""
    try:
        yield
    except FileNotFoundError:
        raise FieldProblem(f"{what} not found: {path}", "file") from None
    except IsADirectoryError:
        raise FieldProblem(f"{path} is a directory, not a {what}", "file") from None
    except UnicodeDecodeError as err:
        raise FieldProblem(f"{path} is not UTF-8 text (byte {err.start})", "file") from None
    except OSError as err:
        raise FieldProblem(f"cannot read {path}: {err.strerror}", "file") from None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when ``word`` is close to one of ``choices``, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(choices: Iterable[object]) -> str:
    """``a, b, c``."""
    return ", ".join(str(choice) for choice in choices)


def _literal_message(error: ErrorDetails) -> str:
    expected = [part.strip().strip("'") for part in error["ctx"]["expected"].replace(" or ", ", ").split(",")]
    return f"must be one of {one_of(expected)}, got {show(error['input'])}{did_you_mean(error['input'], expected)}"


_MESSAGES: dict[str, Callable[[ErrorDetails], str]] = {
    "missing": lambda e: "is required",
    "extra_forbidden": lambda e: f"unknown key {e['loc'][-1]!r}",
    "int_type": lambda e: f"must be a whole number, got {show(e['input'])}",
    "int_parsing": lambda e: f"must be a whole number, got {show(e['input'])}",
    "int_from_float": lambda e: f"must be a whole number, got {show(e['input'])}",
    "float_type": lambda e: f"must be a number, got {show(e['input'])}",
    "float_parsing": lambda e: f"must be a number, got {show(e['input'])}",
    "finite_number": lambda e: f"must be a finite number, got {show(e['input'])}",
    "bool_type": lambda e: f"must be true or false, got {show(e['input'])}",
    "bool_parsing": lambda e: f"must be true or false, got {show(e['input'])}",
    "string_type": lambda e: f"must be a string, got {show(e['input'])}",
    "string_too_short": lambda e: "must not be empty",
    "literal_error": _literal_message,
    "greater_than": lambda e: f"must be > {e['ctx']['gt']:g}, got {show(e['input'])}",
    "greater_than_equal": lambda e: f"must be >= {e['ctx']['ge']:g}, got {show(e['input'])}",
    "less_than": lambda e: f"must be < {e['ctx']['lt']:g}, got {show(e['input'])}",
    "less_than_equal": lambda e: f"must be <= {e['ctx']['le']:g}, got {show(e['input'])}",
    "too_short": lambda e: (
        "must not be empty" if e["ctx"]["min_length"] == 1 else f"must have at least {e['ctx']['min_length']} items"
    ),
    "too_long": lambda e: f"must have at most {e['ctx']['max_length']} items, got {e['ctx']['actual_length']}",
    "list_type": lambda e: f"must be a list, got {show(e['input'])}",
    "tuple_type": lambda e: f"must be a list, got {show(e['input'])}",
    "dict_type": lambda e: f"must be a mapping (key: value), got {show(e['input'])}",
    "model_type": lambda e: f"must be a mapping (key: value), got {show(e['input'])}",
    "model_attributes_type": lambda e: f"must be a mapping (key: value), got {show(e['input'])}",
}


def describe(error: ErrorDetails) -> tuple[tuple[Any, ...], str]:
    """The location (with any ``FieldProblem`` path appended) and the plain-words message of one error."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return (*error["loc"], *cause.path), cause.message
    if isinstance(cause, ValueError):
        return tuple(error["loc"]), str(cause)
    render = _MESSAGES.get(error["type"])
    return tuple(error["loc"]), render(error) if render else error["msg"]


def first_problem(err: ValidationError, *prefix: str | int) -> FieldProblem:
    """The first error of a nested validation as a ``FieldProblem`` below ``prefix`` (tags dropped)."""
    loc, message = describe(err.errors()[0])
    return FieldProblem(message, *prefix, *(element for element in loc if not is_tag(element)))


def _follows_from_item_errors(error: ErrorDetails) -> bool:
    """Pydantic counts a list's length after dropping invalid items: "too short" then only echoes them."""
    written = error.get("input")
    return error["type"] == "too_short" and hasattr(written, "__len__") and len(written) >= error["ctx"]["min_length"]


def problems_from(err: ValidationError, file: str, source: SourceMap | None) -> list[Problem]:
    """Every error of a validation, placed on the source when there is one, deduplicated, in line order."""
    problems: dict[tuple[Any, ...], Problem] = {}
    for error in err.errors():
        if _follows_from_item_errors(error):
            continue
        loc, message = describe(error)
        if source is None:
            mark, path = None, tuple(element for element in loc if not is_tag(element))
        else:
            mark, path = source.locate(loc)
        problem = Problem(file, mark, format_path(path), message)
        problems.setdefault((problem.path, message), problem)
    return sorted(problems.values(), key=lambda p: (p.mark.line, p.mark.column) if p.mark else (0, 0))
