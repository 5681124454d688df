"""Request bodies and response parsing for Ollama's native API and the OpenAI-compatible API.

Pure: no Locust, no sockets. The client feeds response lines in; a parser accumulates what the record
needs (first-token events, counts, server timers, the assistant's message) and reports failures the way
the servers signal them: an ``{"error": ...}`` line with status 200, a stream that ends without its
final chunk, a body that is not the JSON it should be.

Ollama's stream is NDJSON, one JSON object per line, the last with ``"done": true`` and the timers in
nanoseconds. The OpenAI-compatible stream (Ollama ``/v1``, llama.cpp, vLLM) is Server-Sent Events:
``data: {...}`` lines, ``finish_reason`` on the last choice chunk, ``usage`` on a chunk with no choices
(with ``stream_options.include_usage``), llama.cpp's ``timings`` on its final chunk, then
``data: [DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.schema import Api

NS: Final = 1e-9
MS: Final = 1e-3

#: Parser events returned by ``feed``: bit flags, so the hot loop tests them with one ``&``.
CONTENT: Final = 1  # the line carried visible content or a tool call: output the client can act on
THINKING: Final = 2  # the line carried thinking text
FINAL: Final = 4  # the response is complete (done chunk, finish_reason, [DONE])
ERROR: Final = 8  # the server reported an error in the stream


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for, in one form for both APIs."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sampling:
    """The request options a workload sends; ``None`` leaves the server's default."""

    num_predict: int | None = None
    temperature: float | None = None
    seed: int | None = None
    num_ctx: int | None = None
    keep_alive: str | float | None = None
    think: bool | str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Message:
    """A chat message in one form for both APIs; rendered per API by ``build_chat``."""

    role: str  # system, user, assistant, tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""  # tool results: the call answered
    tool_name: str = ""  # tool results: the tool's name (Ollama's native API)


@dataclass(slots=True)
class Reply:
    """What a response said, parsed from its stream or body."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    thinking_chunks: int = 0
    content_chunks: int = 0
    server_total_s: float | None = None
    server_load_s: float | None = None
    server_prompt_eval_s: float | None = None
    server_eval_s: float | None = None
    done_reason: str = ""
    complete: bool = False  # the final chunk arrived
    error: str = ""  # an error the server reported in a 200 response

    def as_message(self) -> Message:
        """The reply as the assistant message to append to a conversation."""
        return Message("assistant", self.content, tuple(self.tool_calls))


class ProtocolError(ValueError):
    """A response that is not what its API promises (bad JSON, wrong shape)."""


#: What reading a JSON document of the wrong shape raises: a list where an object belongs, text where a
#: number does. Parsers turn these into ``ProtocolError`` so that no server can crash the client.
_SHAPE_ERRORS: Final = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def _shape_error(error: Exception, data: bytes) -> ProtocolError:
    if isinstance(error, ProtocolError):
        return error
    return ProtocolError(f"unexpected JSON shape ({type(error).__name__}: {error}): {data[:80]!r}")


# --------------------------------------------------------------------------------------------------
# Requests


def endpoint_path(api: Api, endpoint: str) -> str:
    """The URL path of a workload endpoint (``chat`` or ``generate``) on an API."""
    if api is Api.OLLAMA:
        return "/api/chat" if endpoint == "chat" else "/api/generate"
    return "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"


def build_chat(
    api: Api,
    model: str,
    messages: Sequence[Message],
    sampling: Sampling,
    stream: bool,
    tools: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The JSON body of a chat request."""
    if api is Api.OLLAMA:
        body = _ollama_body(model, sampling, stream)
        body["messages"] = [_ollama_message(m) for m in messages]
    else:
        body = _openai_body(model, sampling, stream)
        body["messages"] = [_openai_message(m) for m in messages]
    if tools:
        body["tools"] = list(tools)
    return body


def build_generate(
    api: Api, model: str, prompt: str, sampling: Sampling, stream: bool, system: str = ""
) -> dict[str, Any]:
    """The JSON body of a completion request (``/api/generate`` or ``/v1/completions``)."""
    if api is Api.OLLAMA:
        body = _ollama_body(model, sampling, stream)
        body["prompt"] = prompt
        if system:
            body["system"] = system
        return body
    body = _openai_body(model, sampling, stream)
    body["prompt"] = f"{system}\n\n{prompt}" if system else prompt
    return body


def _ollama_body(model: str, sampling: Sampling, stream: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("num_predict", "temperature", "seed", "num_ctx"):
        value = getattr(sampling, name)
        if value is not None:
            options[name] = value
    options.update(sampling.extra)
    body: dict[str, Any] = {"model": model, "stream": stream, "options": options}
    if sampling.keep_alive is not None:
        body["keep_alive"] = sampling.keep_alive
    if sampling.think is not None:
        body["think"] = sampling.think
    return body


def _openai_body(model: str, sampling: Sampling, stream: bool) -> dict[str, Any]:
    # max_tokens, not max_completion_tokens: Ollama ignores the latter (reference §1).
    body: dict[str, Any] = {"model": model, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if sampling.num_predict is not None and sampling.num_predict > 0:
        body["max_tokens"] = sampling.num_predict
    if sampling.temperature is not None:
        body["temperature"] = sampling.temperature
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if isinstance(sampling.think, str):
        body["reasoning_effort"] = sampling.think
    body.update(sampling.extra)
    return body


def _ollama_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(m.tool_calls)
        ]
    if m.tool_name:
        out["tool_name"] = m.tool_name
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


def _openai_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


# --------------------------------------------------------------------------------------------------
# Responses


def error_message(body: bytes) -> str:
    """The server's error message from an error body (Ollama ``{"error": "..."}``, OpenAI
    ``{"error": {"message": ...}}``), else the body's first 200 characters."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            return str(err.get("message", err))
        if err is not None:
            return str(err)
    return body[:200].decode("utf-8", "replace").strip()


class OllamaStream:
    """Parses Ollama's NDJSON stream from ``/api/chat`` or ``/api/generate``, line by line."""

    def __init__(self, chat: bool) -> None:
        self.reply = Reply()
        self._chat = chat
        self._text = _Text()

    def feed(self, line: bytes) -> int:
        """Take one line; return the events it carried (``CONTENT | THINKING | FINAL | ERROR``)."""
        if not line.strip():
            return 0
        obj = _loads(line)
        try:
            return _ollama_object(self.reply, obj, self._chat, self._text)
        except _SHAPE_ERRORS as e:
            raise _shape_error(e, line) from e

    def finish(self) -> Reply:
        """The reply once the stream has ended."""
        self._text.into(self.reply)
        return self.reply


class OpenAIStream:
    """Parses an OpenAI-compatible SSE stream from ``/v1/chat/completions`` or ``/v1/completions``."""

    def __init__(self, chat: bool) -> None:
        self.reply = Reply()
        self._chat = chat
        self._text = _Text()
        self._tool_parts: dict[int, dict[str, Any]] = {}

    def feed(self, line: bytes) -> int:
        """Take one line of the event stream; return the events it carried."""
        if not line.startswith(b"data:"):
            return 0  # blank separators, comments (": ping"), event/id fields
        data = line[5:].strip()
        if data == b"[DONE]":
            return FINAL if self.reply.complete else 0
        obj = _loads(data)
        if "error" in obj:
            self.reply.error = error_message(data)
            return ERROR
        try:
            events = 0
            choices = obj.get("choices")
            if choices:
                events = self._choice(choices[0])
            _openai_usage(self.reply, obj)
            return events
        except _SHAPE_ERRORS as e:
            raise _shape_error(e, data) from e

    def _choice(self, choice: Mapping[str, Any]) -> int:
        reply, events = self.reply, 0
        delta = choice.get("delta") if self._chat else choice
        if delta:
            text = delta.get("content") if self._chat else delta.get("text")
            events |= self._text.add(reply, text, delta.get("reasoning_content") or delta.get("reasoning"))
            for part in delta.get("tool_calls") or ():
                events |= CONTENT
                slot = self._tool_parts.setdefault(part.get("index", len(self._tool_parts)), {"arguments": ""})
                if part.get("id"):
                    slot["id"] = part["id"]
                function = part.get("function") or {}
                if function.get("name"):
                    slot["name"] = function["name"]
                slot["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            reply.done_reason = choice["finish_reason"]
            reply.complete = True
            events |= FINAL
        return events

    def finish(self) -> Reply:
        """The reply once the stream has ended, with streamed tool-call fragments assembled."""
        self._text.into(self.reply)
        self.reply.tool_calls.extend(_assemble_tool_call(i, p) for i, p in sorted(self._tool_parts.items()))
        self._tool_parts.clear()
        return self.reply


def stream_parser(api: Api, endpoint: str) -> OllamaStream | OpenAIStream:
    """A fresh line parser for a streamed response of ``endpoint`` (``chat`` or ``generate``)."""
    chat = endpoint == "chat"
    return OllamaStream(chat) if api is Api.OLLAMA else OpenAIStream(chat)


def parse_body(api: Api, endpoint: str, body: bytes) -> Reply:
    """Parse a whole non-streamed response body."""
    try:
        return _parse_body(api, endpoint, body)
    except _SHAPE_ERRORS as e:
        raise _shape_error(e, body) from e


def _parse_body(api: Api, endpoint: str, body: bytes) -> Reply:
    chat = endpoint == "chat"
    obj = _loads(body)
    reply = Reply()
    if api is Api.OLLAMA:
        text = _Text()
        _ollama_object(reply, obj, chat, text)
        text.into(reply)
        return reply
    if "error" in obj:
        reply.error = error_message(body)
        return reply
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ProtocolError("response has no choices")
    choice = choices[0]
    message = (choice.get("message") or {}) if chat else {"content": choice.get("text", "")}
    reply.content = message.get("content") or ""
    reply.thinking = message.get("reasoning_content") or message.get("reasoning") or ""
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        reply.tool_calls.append(_assemble_tool_call(i, {"id": call.get("id"), **function}))
    reply.done_reason = choice.get("finish_reason") or ""
    reply.complete = True
    _openai_usage(reply, obj)
    return reply


class _Text:
    """A reply's streamed text, kept as parts and joined once: ``+=`` on an attribute copies the whole
    string every chunk, quadratic in the answer's length."""

    __slots__ = ("content", "thinking")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.thinking: list[str] = []

    def add(self, reply: Reply, content: str | None, thinking: str | None) -> int:
        """Take one chunk's visible and thinking text (counted on ``reply``); the events it carried.
        Raises ``TypeError`` for text that is not a string (a body of the wrong shape)."""
        if not isinstance(content or "", str) or not isinstance(thinking or "", str):
            raise TypeError(f"text must be a string, got {type(content or thinking).__name__}")
        events = 0
        if content:
            self.content.append(content)
            reply.content_chunks += 1
            events |= CONTENT
        if thinking:
            self.thinking.append(thinking)
            reply.thinking_chunks += 1
            events |= THINKING
        return events

    def into(self, reply: Reply) -> None:
        reply.content += "".join(self.content)
        reply.thinking += "".join(self.thinking)
        self.content.clear()
        self.thinking.clear()


#: ``json.loads`` minus its per-call encoding detection on bytes (a stream is UTF-8: RFC 8259 §8.1).
_decode = json.JSONDecoder().decode


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = _decode(data.decode())
    except ValueError as e:
        raise ProtocolError(f"not JSON: {data[:80]!r}") from e
    if not isinstance(obj, dict):
        raise ProtocolError(f"not a JSON object: {data[:80]!r}")
    return obj


def _ollama_object(reply: Reply, obj: Mapping[str, Any], chat: bool, text_parts: _Text) -> int:
    if "error" in obj:
        reply.error = str(obj["error"])
        return ERROR
    events = 0
    part: Mapping[str, Any] = obj
    if chat:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise ProtocolError("chat chunk without a message")
        part = message
    events |= text_parts.add(reply, part.get("content") if chat else part.get("response"), part.get("thinking"))
    for call in part.get("tool_calls") or ():
        events |= CONTENT
        function = call.get("function") or {}
        reply.tool_calls.append(
            ToolCall(str(call.get("id") or f"call_{len(reply.tool_calls)}"), str(function.get("name", "")),
                     _arguments(function.get("arguments")))
        )
    if obj.get("done"):
        reply.complete = True
        reply.done_reason = obj.get("done_reason") or ""
        reply.prompt_tokens = obj.get("prompt_eval_count")
        reply.output_tokens = obj.get("eval_count")
        reply.server_total_s = _scaled(obj.get("total_duration"), NS)
        reply.server_load_s = _scaled(obj.get("load_duration"), NS)
        # Metrics fields are omitempty: a zero prompt_eval_duration (fully cached prompt) is absent.
        if reply.server_total_s is not None:
            reply.server_load_s = reply.server_load_s or 0.0
            reply.server_prompt_eval_s = _scaled(obj.get("prompt_eval_duration"), NS) or 0.0
            reply.server_eval_s = _scaled(obj.get("eval_duration"), NS) or 0.0
        if reply.output_tokens is None and reply.server_total_s is not None:
            reply.output_tokens = 0
        events |= FINAL
    return events


def _openai_usage(reply: Reply, obj: Mapping[str, Any]) -> None:
    usage = obj.get("usage")
    # Ollama's /v1/completions puts an all-zero usage on every chunk before the real one.
    if isinstance(usage, dict) and (usage.get("prompt_tokens") or usage.get("completion_tokens")):
        reply.prompt_tokens = usage.get("prompt_tokens")
        reply.output_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and details.get("cached_tokens") is not None:
            reply.cached_tokens = details["cached_tokens"]
    timings = obj.get("timings")  # llama.cpp
    if isinstance(timings, dict):
        reply.server_prompt_eval_s = _scaled(timings.get("prompt_ms"), MS)
        reply.server_eval_s = _scaled(timings.get("predicted_ms"), MS)
        if timings.get("cache_n") is not None:
            reply.cached_tokens = timings["cache_n"]
        if reply.output_tokens is None and timings.get("predicted_n") is not None:
            reply.output_tokens = timings["predicted_n"]
        if reply.prompt_tokens is None and timings.get("prompt_n") is not None:
            reply.prompt_tokens = timings["prompt_n"] + (timings.get("cache_n") or 0)


def _assemble_tool_call(index: int, part: Mapping[str, Any]) -> ToolCall:
    call_id = str(part.get("id") or f"call_{index}")
    return ToolCall(call_id, str(part.get("name", "")), _arguments(part.get("arguments")))


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"_raw": raw}
        return parsed if isinstance(parsed, dict) else {"_value": parsed}
    return {}


def _scaled(value: Any, unit: float) -> float | None:
    return None if value is None else float(value) * unit
