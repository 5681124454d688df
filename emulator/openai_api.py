"""Ollama's OpenAI-compatible routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/models`` and ``/v1/models/{model}``.

As in Ollama (``middleware/openai.go``), a request is translated into a native one and served by the
native handler; only the rendering differs. Streams are SSE in the v0.32.6+ format (role on the first
chunk only, a separate finish chunk), or the older one with ``--openai-legacy-stream``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from emulator.catalog import MODIFIED_AT_UNIX
from emulator.embeddings import embed_input_list, embed_inputs, embedding
from emulator.exchange import SSE_TYPE, Exchange, dumps
from emulator.inference import OutputPlan
from emulator.interface import Emulator
from emulator.native_api import RELAX_THINKING, chat_request, generate_request
from emulator.resolve import find_model
from emulator.validation import ApiError, check_fields, decode_body

_CHAT_FIELDS = {"model": "string", "messages": "[]openai.Message", "stream": "bool", "max_tokens": "int", "seed": "int"}
_COMPLETION_FIELDS = {"model": "string", "prompt": "string", "stream": "bool", "max_tokens": "int", "seed": "int"}
DONE_EVENT = b"data: [DONE]\n\n"


def _decode(ex: Exchange, struct: str, fields: dict[str, str]) -> dict[str, Any]:
    if not ex.req.body.strip():
        raise ApiError(400, "EOF")  # Gin's ShouldBindJSON on an empty body, passed through by the middleware
    body = decode_body(ex.req.body, struct)
    check_fields(body, fields, struct)
    return body


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """Sampling options as ``FromChatRequest``/``FromCompleteRequest`` set them (temperature/top_p 1.0)."""
    options: dict[str, Any] = {"temperature": body.get("temperature", 1.0), "top_p": body.get("top_p") or 1.0}
    if body.get("max_tokens") is not None:  # max_completion_tokens is not read by Ollama
        options["num_predict"] = body["max_tokens"]
    for key in ("seed", "frequency_penalty", "presence_penalty"):
        if body.get(key) is not None:
            options[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    return options


def _include_usage(body: dict[str, Any]) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def _usage(metrics: dict[str, int]) -> dict[str, int]:
    prompt, completion = metrics.get("prompt_eval_count", 0), metrics.get("eval_count", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def _openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": c["id"],
            "index": c["function"]["index"],
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": json.dumps(c["function"]["arguments"])},
        }
        for c in calls
    ]


def _finish_reason(plan: OutputPlan) -> str:
    return "tool_calls" if plan.tool_calls and plan.done_reason == "stop" else plan.done_reason


# --- /v1/chat/completions ---------------------------------------------------------------------------
class ChatChunkFormat:
    """``chat.completion.chunk`` events; ``created`` is pinned to the first chunk's second."""

    def __init__(self, cid: str, model: str, legacy: bool, tool_calls: list[dict[str, Any]]) -> None:
        self._cid = cid
        self._model = model
        self._legacy = legacy
        self._tool_delta = b'"content":"","tool_calls":' + dumps(_openai_tool_calls(tool_calls))
        self._prefix = b""
        self.created = 0
        self.role_sent = False

    def chunk_base(self) -> dict[str, Any]:
        if not self.created:
            self.created = int(time.time())
        return {
            "id": self._cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
            "system_fingerprint": "fp_ollama",
        }

    def _open(self) -> bytes:
        if not self._prefix:
            self._prefix = b"data: " + dumps(self.chunk_base())[:-1] + b',"choices":[{"index":0,"delta":{'
        if self._legacy or not self.role_sent:
            self.role_sent = True
            return self._prefix + b'"role":"assistant",'
        return self._prefix

    def token(self, created_at: bytes, thinking: bool, token_json: bytes) -> bytes:
        delta = b'"content":"","reasoning":' if thinking else b'"content":'
        return b"".join((self._open(), delta, token_json, b'},"finish_reason":null}]}\n\n'))

    def tool_calls(self, created_at: bytes) -> bytes:
        return self._open() + self._tool_delta + b'},"finish_reason":null}]}\n\n'

    def error(self, message: str) -> bytes:
        return _sse({"error": {"message": message, "type": "api_error", "param": None, "code": None}})


class ChatCompletionWriter:
    content_type = SSE_TYPE

    def __init__(self, cid: str, model: str, plan: OutputPlan, legacy: bool, include_usage: bool) -> None:
        self._cid = cid
        self._model = model
        self._legacy = legacy
        self._include_usage = include_usage
        self.fmt = ChatChunkFormat(cid, model, legacy, plan.tool_calls)

    def final_chunks(self, plan: OutputPlan, metrics: dict[str, int]) -> list[bytes]:
        base = self.fmt.chunk_base()
        reason = _finish_reason(plan)
        if self._legacy:  # the done response itself carries the finish reason
            events = [_sse({**base, "choices": [_choice({"role": "assistant", "content": ""}, reason)]})]
        else:
            events = [] if self.fmt.role_sent else [_sse({**base, "choices": [_choice(_role_delta(), None)]})]
            events.append(_sse({**base, "choices": [_choice({}, reason)]}))
        if self._include_usage:
            events.append(_sse({**base, "choices": [], "usage": _usage(metrics)}))
        return [*events, DONE_EVENT]

    def whole(self, plan: OutputPlan, metrics: dict[str, int]) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": plan.content}
        if plan.thinking:
            message["reasoning"] = plan.thinking
        if plan.tool_calls:
            message["tool_calls"] = _openai_tool_calls(plan.tool_calls)
        return {
            "id": self._cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(plan)}],
            "usage": _usage(metrics),
        }


def _role_delta() -> dict[str, str]:
    return {"role": "assistant", "content": ""}


def _choice(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": reason}


def _native_message(msg: Any) -> Any:
    """An OpenAI message as Ollama's ``FromChatRequest`` turns it into a native one."""
    if not isinstance(msg, dict):
        return msg
    out: dict[str, Any] = {"role": msg.get("role", "")}
    content = msg.get("content")
    if isinstance(content, list):  # content parts: text joined, images counted
        out["content"] = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        images = [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
        if images:
            out["images"] = ["" for _ in images]
    elif isinstance(content, str):
        out["content"] = content
    if msg.get("reasoning"):
        out["thinking"] = msg["reasoning"]
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        out["tool_calls"] = [
            {"function": {"name": (c.get("function") or {}).get("name", ""), "arguments": _arguments(c)}}
            for c in calls
            if isinstance(c, dict)
        ]
    if msg.get("tool_call_id"):
        out["tool_call_id"] = msg["tool_call_id"]
    return out


def _arguments(call: dict[str, Any]) -> Any:
    raw = (call.get("function") or {}).get("arguments", "{}")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}


async def chat_completions(app: Emulator, ex: Exchange) -> None:
    body = _decode(ex, "ChatCompletionRequest", _CHAT_FIELDS)
    messages = body.get("messages")
    if not messages:
        raise ApiError(400, "[] is too short - 'messages'")
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    native: dict[str, Any] = {
        "model": body.get("model", ""),
        "messages": [_native_message(m) for m in messages],
        "stream": bool(body.get("stream", False)),
        "options": _options(body),
        "tools": body.get("tools"),
        RELAX_THINKING: True,
    }
    if effort is not None:
        native["think"] = False if effort == "none" else effort
    cid = f"chatcmpl-{app.rng.randrange(999)}"
    include_usage = _include_usage(body)

    def writer(plan: OutputPlan) -> ChatCompletionWriter:
        return ChatCompletionWriter(cid, native["model"], plan, app.config.openai_legacy_stream, include_usage)

    await chat_request(app, ex, native, writer)


# --- /v1/completions --------------------------------------------------------------------------------
class CompletionChunkFormat:
    """``text_completion`` events; ``created`` is stamped per chunk, as ``ToCompleteChunk`` does."""

    def __init__(self, cid: str, model: str, include_usage: bool) -> None:
        self._cid = cid
        self._tail = (
            b',"index":0,"finish_reason":null}],"model":'
            + dumps(model)
            + b',"system_fingerprint":"fp_ollama"'
            + (b',"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}' if include_usage else b"")
            + b"}\n\n"
        )
        self._head = b'data: {"id":"' + cid.encode() + b'","object":"text_completion","created":'

    def token(self, created_at: bytes, thinking: bool, token_json: bytes) -> bytes:
        text = b'""' if thinking else token_json  # thinking has no place in a completion: empty text
        return b"".join((self._head, str(int(time.time())).encode(), b',"choices":[{"text":', text, self._tail))

    def tool_calls(self, created_at: bytes) -> bytes:
        return self.token(created_at, True, b'""')

    def error(self, message: str) -> bytes:
        return _sse({"error": {"message": message, "type": "api_error", "param": None, "code": None}})


class CompletionWriter:
    content_type = SSE_TYPE

    def __init__(self, cid: str, model: str, include_usage: bool) -> None:
        self._cid = cid
        self._model = model
        self._include_usage = include_usage
        self.fmt = CompletionChunkFormat(cid, model, include_usage)

    def _completion(self, choices: list[dict[str, Any]], usage: dict[str, int] | None, chunk: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": self._cid, "object": "text_completion", "created": int(time.time())}
        if chunk:
            obj.update(choices=choices, model=self._model, system_fingerprint="fp_ollama")
        else:
            obj.update(model=self._model, system_fingerprint="fp_ollama", choices=choices)
        if usage is not None:
            obj["usage"] = usage
        return obj

    def final_chunks(self, plan: OutputPlan, metrics: dict[str, int]) -> list[bytes]:
        zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} if self._include_usage else None
        done_choice = [{"text": "", "index": 0, "finish_reason": plan.done_reason}]
        events = [_sse(self._completion(done_choice, zero, chunk=True))]
        if self._include_usage:
            events.append(_sse(self._completion([], _usage(metrics), chunk=True)))
        return [*events, DONE_EVENT]

    def whole(self, plan: OutputPlan, metrics: dict[str, int]) -> Any:
        choices = [{"text": plan.content, "index": 0, "finish_reason": plan.done_reason}]
        return self._completion(choices, _usage(metrics), chunk=False)


async def completions(app: Emulator, ex: Exchange) -> None:
    body = _decode(ex, "CompletionRequest", _COMPLETION_FIELDS)
    native = {
        "model": body.get("model", ""),
        "prompt": body.get("prompt", ""),
        "suffix": body.get("suffix", ""),
        "stream": bool(body.get("stream", False)),
        "options": _options(body),
    }
    cid = f"cmpl-{app.rng.randrange(999)}"
    await generate_request(app, ex, native, CompletionWriter(cid, native["model"], _include_usage(body)))


# --- models and embeddings ----------------------------------------------------------------------------
def _model_entry(name: str) -> dict[str, Any]:
    owner = name.split("/")[0] if "/" in name else "library"
    return {"id": name, "object": "model", "created": MODIFIED_AT_UNIX, "owned_by": owner}


async def list_models(app: Emulator, ex: Exchange) -> None:
    ex.send_json({"object": "list", "data": [_model_entry(m.name) for m in app.catalog.models]})


async def retrieve_model(app: Emulator, ex: Exchange) -> None:
    name = ex.req.path[len("/v1/models/") :]
    ex.send_json(_model_entry(find_model(app, name).name))


async def embeddings(app: Emulator, ex: Exchange) -> None:
    body = _decode(ex, "EmbedRequest", {"model": "string"})
    model = find_model(app, body.get("model") or "")
    ex.model = model.name
    inputs = embed_input_list(body.get("input"))
    counts = await embed_inputs(app, ex, model, inputs, {})
    dims = min(body.get("dimensions") or model.embedding_length, model.embedding_length)
    data = [
        {"object": "embedding", "embedding": embedding(text, dims, app.config.seed), "index": i}
        for i, text in enumerate(inputs)
    ]
    total = sum(counts)
    ex.send_json(
        {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
    )
