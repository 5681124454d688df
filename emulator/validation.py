"""Request bodies, checked the way Ollama's Go code checks them, with Go's error texts.

Ollama binds bodies with ``encoding/json`` (``ShouldBindJSON``): malformed JSON and wrong field types are
400s with Go's own messages; unknown fields are ignored. ``options`` are checked later, inside
``scheduleRunner``, so a wrong option type is a 500 (``option "num_ctx" must be of type integer``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from emulator.config import keep_alive_seconds, parse_go_duration


class ApiError(Exception):
    """An error response: HTTP ``status`` and Ollama's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Go types of the fields a request is checked against (field -> Go type name); "any" is not checked.
GENERATE_FIELDS: Final = {
    "model": "string", "prompt": "string", "suffix": "string", "system": "string", "template": "string",
    "context": "[]int", "stream": "bool", "raw": "bool", "images": "[]api.ImageData", "options": "map",
    "truncate": "bool", "shift": "bool", "logprobs": "bool", "top_logprobs": "int",
}  # fmt: skip
CHAT_FIELDS: Final = {
    "model": "string", "messages": "[]api.Message", "stream": "bool", "tools": "api.Tools", "options": "map",
    "truncate": "bool", "shift": "bool", "logprobs": "bool", "top_logprobs": "int",
}  # fmt: skip
MESSAGE_FIELDS: Final = {
    "role": "string", "content": "string", "thinking": "string", "images": "[]api.ImageData",
    "tool_calls": "[]api.ToolCall", "tool_name": "string", "tool_call_id": "string",
}  # fmt: skip
EMBED_FIELDS: Final = {"model": "string", "truncate": "bool", "dimensions": "int", "options": "map"}
SHOW_FIELDS: Final = {"model": "string", "name": "string", "verbose": "bool"}

_THINK_LEVELS: Final = ("high", "medium", "low", "max")


def decode_body(body: bytes, struct: str) -> dict[str, Any]:
    """The JSON object in ``body``; 400 ``missing request body`` when empty, Go's texts when malformed."""
    if not body.strip():
        raise ApiError(400, "missing request body")
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid character looking for beginning of value") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, _go_syntax_error(exc)) from None
    if not isinstance(value, dict):
        raise ApiError(400, f"json: cannot unmarshal {_json_kind(value)} into Go value of type api.{struct}")
    return value


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    where = {
        "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
        "Expecting value": "looking for beginning of value",
        "Expecting ':' delimiter": "after object key",
        "Expecting ',' delimiter": "after object key:value pair",
        "Extra data": "after top-level value",
    }.get(exc.msg, "looking for beginning of value")
    quoted = "'\\''" if char == "'" else f"'{char}'"
    return f"invalid character {quoted} {where}"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def check_fields(body: dict[str, Any], fields: dict[str, str], struct: str) -> None:
    """Raise Go's ``cannot unmarshal`` 400 for the first field whose JSON type does not fit."""
    for name, go_type in fields.items():
        value = body.get(name)
        if value is not None and not _fits(value, go_type):
            raise ApiError(400, _unmarshal_error(value, f"{struct}.{name}", go_type))
    if struct == "ChatRequest" and isinstance(body.get("messages"), list):
        for msg in body["messages"]:
            if not isinstance(msg, dict):
                raise ApiError(400, _unmarshal_error(msg, "ChatRequest.messages", "api.Message"))
            for name, go_type in MESSAGE_FIELDS.items():
                value = msg.get(name)
                if value is not None and not _fits(value, go_type):
                    raise ApiError(400, _unmarshal_error(value, f"ChatRequest.messages.{name}", go_type))


def _fits(value: Any, go_type: str) -> bool:
    if go_type == "string":
        return isinstance(value, str)
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if go_type == "[]int":
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if go_type == "map":
        return isinstance(value, dict)
    return isinstance(value, list)  # the remaining Go types are slices


def _unmarshal_error(value: Any, field: str, go_type: str) -> str:
    kind = _json_kind(value)
    if kind == "number" and go_type == "int":
        kind = f"number {value}"
    go_type = "map[string]interface {}" if go_type == "map" else go_type
    return f"json: cannot unmarshal {kind} into Go struct field {field} of type {go_type}"


def parse_keep_alive(body: dict[str, Any]) -> float | None:
    """``keep_alive`` in seconds (``FOREVER`` when negative), ``None`` when absent (``api.Duration``)."""
    value = body.get("keep_alive")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return keep_alive_seconds(float(value))
    if isinstance(value, str):
        try:
            return keep_alive_seconds(parse_go_duration(value))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    go_type = {bool: "bool", dict: "map[string]interface {}", list: "[]interface {}"}[type(value)]
    raise ApiError(400, f"Unsupported type: '{go_type}'")


def parse_think(body: dict[str, Any]) -> bool | str | None:
    """``think``: true/false or a level; 400 with Ollama's message otherwise."""
    value = body.get("think")
    if value is None or isinstance(value, bool) or value in _THINK_LEVELS:
        return value
    shown = json.dumps(value)
    raise ApiError(400, f'invalid think value: {shown} (must be "high", "medium", "low", "max", true, or false)')


# option -> Go kind, from api.Options (api/types.go); unknown options are ignored with a warning in Ollama
_OPTION_KINDS: Final = {
    "num_keep": "integer", "seed": "integer", "num_predict": "integer", "top_k": "integer",
    "repeat_last_n": "integer", "num_ctx": "integer", "num_batch": "integer", "num_gpu": "integer",
    "main_gpu": "integer", "num_thread": "integer",
    "temperature": "float32", "top_p": "float32", "min_p": "float32", "typical_p": "float32",
    "repeat_penalty": "float32", "presence_penalty": "float32", "frequency_penalty": "float32",
    "use_mmap": "boolean", "stop": "array",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Options:
    """The request options the emulator acts on; the others are validated and ignored."""

    num_predict: int = -1
    num_ctx: int | None = None  # None: the server default (OLLAMA_CONTEXT_LENGTH)
    num_keep: int = 4
    seed: int = -1
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    num_thread: int = 0
    use_mmap: bool | None = None


def parse_options(raw: dict[str, Any] | None) -> Options:
    """Typed options; a wrong type is Ollama's 500 ``option "x" must be of type integer``."""
    values: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        kind = _OPTION_KINDS.get(key)
        if kind is None or value is None:
            continue
        if kind == "integer":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ApiError(500, f'option "{key}" must be of type integer')
            value = int(value)
        elif kind == "float32" and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise ApiError(500, f'option "{key}" must be of type float32')
        elif kind == "boolean" and not isinstance(value, bool):
            raise ApiError(500, f'option "{key}" must be of type boolean')
        elif kind == "array" and not isinstance(value, list):
            raise ApiError(500, f'option "{key}" must be of type array')
        if key in Options.__dataclass_fields__:
            values[key] = value
    return Options(**values)
