"""Parse YAML and remember where every key and list item was written, to point errors at their line.

Pure: no Locust, no file I/O (the caller reads the text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the source text."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Mark:
        return cls(mark.line + 1, mark.column + 1)


@dataclass
class _Where:
    start: Mark
    children: dict[Any, Mark] = field(default_factory=dict)  # mapping key or list index -> where it is written


class YamlSyntaxError(Exception):
    """The text is not valid YAML; ``mark`` is where the parser gave up."""

    def __init__(self, message: str, mark: Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _MarkingLoader(yaml.SafeLoader):
    """A safe loader that records, for every mapping and list it builds, where each entry was written."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.where: dict[int, _Where] = {}

    def construct_marked_map(self, node: MappingNode) -> Iterator[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        yield data
        self._reject_duplicate_keys(node)
        data.update(self.construct_mapping(node))  # also flattens `<<` merge keys into node.value
        where = _Where(Mark.of(node.start_mark))
        for key_node, _ in node.value:  # later entries win, as they do in the data
            where.children[self.construct_object(key_node)] = Mark.of(key_node.start_mark)
        self.where[id(data)] = where

    def construct_marked_seq(self, node: SequenceNode) -> Iterator[list[Any]]:
        data: list[Any] = []
        yield data
        data.extend(self.construct_sequence(node))
        children = {index: Mark.of(item.start_mark) for index, item in enumerate(node.value)}
        self.where[id(data)] = _Where(Mark.of(node.start_mark), children)

    def _reject_duplicate_keys(self, node: MappingNode) -> None:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node)
            if isinstance(key, (list, dict)):
                raise ConstructorError(None, None, "a mapping key must be a plain value", key_node.start_mark)
            if key in seen:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first written on line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark


_MarkingLoader.add_constructor("tag:yaml.org,2002:map", _MarkingLoader.construct_marked_map)
_MarkingLoader.add_constructor("tag:yaml.org,2002:seq", _MarkingLoader.construct_marked_seq)


def is_tag(element: object) -> bool:
    """Whether a validation-error location element is a union tag (``<chat>``), not a key in the data."""
    return isinstance(element, str) and element.startswith("<") and element.endswith(">")


@dataclass(frozen=True)
class SourceMap:
    """Parsed YAML data plus the position of every mapping key and list item in it."""

    data: Any
    _where: dict[int, _Where]
    _root: Mark

    def locate(self, loc: tuple[Any, ...]) -> tuple[Mark, tuple[Any, ...]]:
        """Where the value at ``loc`` (a validation-error location) is written, and its path in the data.

        A key or item that is present points at its own line. A missing key points at the key that holds
        its parent (``load:`` for a missing ``load.users``). Union tags in ``loc`` are skipped.
        """
        node, mark = self.data, self._root
        path: list[Any] = []
        elements = [element for element in loc if not is_tag(element)]
        for index, element in enumerate(elements):
            where = self._where.get(id(node))
            present = where is not None and (
                (isinstance(node, dict) and element in node)
                or (isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node))
            )
            if where is None or not present:
                return mark, (*path, *elements[index:])
            mark = where.children[element]
            node = node[element]
            path.append(element)
        return mark, tuple(path)


#: Plain-words hints for PyYAML's most common complaints, keyed by the start of its message.
_HINTS = {
    "found character '\\t'": "YAML indents with spaces, never tabs",
    "expected <block end>": "check the indentation of this line against the lines above",
    "mapping values are not allowed here": "a value containing ': ' needs quotes, or a key is missing its indentation",
    "could not find expected ':'": "a key is missing its ':' or a multi-line value needs quotes",
    "found undefined alias": "an *alias needs an &anchor defined above it",
}


def _with_hint(problem: str) -> str:
    hint = next((hint for start, hint in _HINTS.items() if problem.startswith(start)), None)
    return f"{problem}; {hint}" if hint else problem


def parse_yaml(text: str) -> SourceMap:
    """Parse one YAML document, recording positions. Raises ``YamlSyntaxError`` naming the line."""
    loader = _MarkingLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = _with_hint(err.problem or err.context or "invalid YAML")
        if err.context and err.problem:
            start, end = err.context_mark, err.problem_mark
            started = start is not None and end is not None and start.line != end.line
            problem += f" ({err.context}{f', which starts on line {start.line + 1}' if start and started else ''})"
        raise YamlSyntaxError(problem, Mark.of(mark) if mark else None) from None
    except yaml.YAMLError as err:  # e.g. a reader error on a control character
        raise YamlSyntaxError(str(err).splitlines()[0], None) from None
    finally:
        loader.dispose()
    root = loader.where.get(id(data))
    return SourceMap(data, loader.where, root.start if root else Mark(1, 1))
