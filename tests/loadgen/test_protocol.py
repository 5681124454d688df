"""Request bodies and stream parsing, on wire samples taken from the reference (Ollama v0.33, llama.cpp)."""

from __future__ import annotations

import json

import pytest

from analysis.schema import Api
from loadgen.wire.protocol import (
    CONTENT,
    ERROR,
    FINAL,
    THINKING,
    Message,
    ProtocolError,
    Sampling,
    ToolCall,
    build_chat,
    build_generate,
    endpoint_path,
    error_message,
    parse_body,
    stream_parser,
)


def feed_all(parser, lines: list[str]) -> list[int]:
    return [parser.feed(line.encode() + b"\n") for line in lines]


OLLAMA_CHAT = [
    '{"model":"m","created_at":"2026-08-21T18:48:22.1Z","message":{"role":"assistant","content":"","thinking":"Hmm"},"done":false}',
    '{"model":"m","created_at":"2026-08-21T18:48:22.2Z","message":{"role":"assistant","content":"The"},"done":false}',
    '{"model":"m","created_at":"2026-08-21T18:48:22.3Z","message":{"role":"assistant","content":" sky"},"done":false}',
    '{"model":"m","created_at":"2026-08-21T18:48:22.4Z","message":{"role":"assistant","content":""},"done":true,'
    '"done_reason":"length","total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,'
    '"prompt_eval_duration":130079000,"eval_count":3,"eval_duration":4232710000}',
]


def test_ollama_chat_stream_events_counts_and_timers():
    parser = stream_parser(Api.OLLAMA, "chat")
    events = feed_all(parser, OLLAMA_CHAT)
    assert events == [THINKING, CONTENT, CONTENT, FINAL]
    reply = parser.finish()
    assert (reply.content, reply.thinking) == ("The sky", "Hmm")
    assert (reply.prompt_tokens, reply.output_tokens, reply.done_reason, reply.complete) == (26, 3, "length", True)
    # ns -> s: 10706818083 ns = 10.706818083 s
    assert reply.server_total_s == pytest.approx(10.706818083)
    assert reply.server_load_s == pytest.approx(6.338219291)
    assert reply.server_prompt_eval_s == pytest.approx(0.130079)
    assert reply.server_eval_s == pytest.approx(4.23271)
    assert (reply.content_chunks, reply.thinking_chunks) == (2, 1)


def test_ollama_stream_without_done_is_incomplete():
    parser = stream_parser(Api.OLLAMA, "chat")
    feed_all(parser, OLLAMA_CHAT[:3])
    assert not parser.finish().complete


def test_ollama_error_line_mid_stream():
    parser = stream_parser(Api.OLLAMA, "generate")
    events = feed_all(
        parser, ['{"model":"m","response":"a","done":false}', '{"error":"model runner has unexpectedly stopped"}']
    )
    assert events == [CONTENT, ERROR]
    assert parser.finish().error == "model runner has unexpectedly stopped"


def test_ollama_generate_omitted_zero_prompt_eval_duration_reads_as_zero():
    # Metrics are omitempty: a fully cached prompt has no prompt_eval_duration at all.
    parser = stream_parser(Api.OLLAMA, "generate")
    feed_all(parser, ['{"response":"","done":true,"done_reason":"stop","total_duration":2000000,'
                      '"load_duration":1000000,"prompt_eval_count":5,"eval_count":1,"eval_duration":500000}'])
    reply = parser.finish()
    assert reply.server_prompt_eval_s == 0.0
    assert reply.server_eval_s == pytest.approx(0.0005)


def test_ollama_tool_calls_on_any_chunk():
    parser = stream_parser(Api.OLLAMA, "chat")
    events = feed_all(parser, [
        '{"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_ab12cd34","function":{"index":0,'
        '"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}',
        '{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1,'
        '"eval_count":4,"eval_duration":1}',
    ])
    assert events == [CONTENT, FINAL]  # a tool call is the first output an agent can act on
    assert parser.finish().tool_calls == [ToolCall("call_ab12cd34", "get_weather", {"city": "Tokyo"})]


def test_garbage_line_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        stream_parser(Api.OLLAMA, "chat").feed(b"\x00\xffnot json\n")


OPENAI_CHAT_V0326 = [
    'data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m",'
    '"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}',
    "",
    'data: {"id":"chatcmpl-7","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}',
    "",
    'data: {"id":"chatcmpl-7","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    "",
    'data: {"id":"chatcmpl-7","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}',
    "",
    "data: [DONE]",
]


def test_openai_chat_stream_current_format():
    parser = stream_parser(Api.OPENAI, "chat")
    events = feed_all(parser, OPENAI_CHAT_V0326)
    assert [e for e in events if e] == [CONTENT, CONTENT, FINAL, FINAL]
    reply = parser.finish()
    assert (reply.content, reply.prompt_tokens, reply.output_tokens, reply.done_reason) == ("Hello", 12, 2, "stop")
    assert reply.server_eval_s is None  # Ollama's /v1 reports no timers


def test_openai_first_role_only_chunk_is_not_content():
    parser = stream_parser(Api.OPENAI, "chat")
    # llama.cpp's first chunk: role with null content
    assert parser.feed(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}\n') == 0


def test_llamacpp_timings_fill_server_columns():
    parser = stream_parser(Api.OPENAI, "chat")
    feed_all(parser, [
        'data: {"choices":[{"index":0,"delta":{"content":" three"}}]}',
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"timings":{"cache_n":3,"prompt_n":6,'
        '"prompt_ms":420.2,"predicted_n":20,"predicted_ms":884.3}}',
        'data: {"choices":[],"usage":{"completion_tokens":20,"prompt_tokens":9,"total_tokens":29}}',
        "data: [DONE]",
    ])
    reply = parser.finish()
    assert reply.server_prompt_eval_s == pytest.approx(0.4202)  # 420.2 ms
    assert reply.server_eval_s == pytest.approx(0.8843)
    assert (reply.cached_tokens, reply.output_tokens, reply.prompt_tokens) == (3, 20, 9)


def test_ollama_v1_completions_zero_usage_on_every_chunk_is_ignored():
    parser = stream_parser(Api.OPENAI, "generate")
    zero = '"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}'
    feed_all(parser, [
        f'data: {{"choices":[{{"text":"a","index":0,"finish_reason":null}}],{zero}}}',
        f'data: {{"choices":[{{"text":"","index":0,"finish_reason":"length"}}],{zero}}}',
        'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}',
        "data: [DONE]",
    ])
    reply = parser.finish()
    assert (reply.content, reply.prompt_tokens, reply.output_tokens, reply.complete) == ("a", 7, 1, True)


def test_openai_streamed_tool_call_fragments_are_assembled():
    parser = stream_parser(Api.OPENAI, "chat")
    feed_all(parser, [
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
        '"function":{"name":"search","arguments":"{\\"q\\": "}}]}}]}',
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"ollama\\"}"}}]}}]}',
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
    ])
    reply = parser.finish()
    assert reply.tool_calls == [ToolCall("call_1", "search", {"q": "ollama"})]
    assert reply.done_reason == "tool_calls"


def test_openai_reasoning_is_thinking():
    parser = stream_parser(Api.OPENAI, "chat")
    assert parser.feed(b'data: {"choices":[{"index":0,"delta":{"reasoning":"let me see"}}]}\n') == THINKING
    assert parser.feed(b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"more"}}]}\n') == THINKING


def test_openai_error_event():
    parser = stream_parser(Api.OPENAI, "chat")
    assert parser.feed(b'data: {"error":{"message":"boom","type":"api_error"}}\n') == ERROR
    assert parser.finish().error == "boom"


def test_non_streamed_bodies():
    ollama = parse_body(Api.OLLAMA, "generate", b'{"response":"hi","done":true,"done_reason":"stop","total_duration":3,'
                                                 b'"load_duration":1,"prompt_eval_count":2,"prompt_eval_duration":1,'
                                                 b'"eval_count":1,"eval_duration":1}')
    assert (ollama.content, ollama.output_tokens, ollama.complete) == ("hi", 1, True)
    openai = parse_body(Api.OPENAI, "chat", json.dumps({
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok", "reasoning": "r"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }).encode())
    assert (openai.content, openai.thinking, openai.output_tokens) == ("ok", "r", 1)
    with pytest.raises(ProtocolError):
        parse_body(Api.OPENAI, "chat", b'{"object":"chat.completion"}')


def test_error_messages_from_both_shapes():
    assert error_message(b'{"error":"model \'x\' not found"}') == "model 'x' not found"
    assert error_message(b'{"error":{"message":"server busy","type":"api_error"}}') == "server busy"
    assert error_message(b"404 page not found") == "404 page not found"


def test_request_bodies_per_api():
    sampling = Sampling(num_predict=100, temperature=0.0, seed=7, num_ctx=2048, keep_alive="5m", think=False,
                        extra={"ignore_eos": True})
    history = [
        Message("user", "weather?"),
        Message("assistant", "", (ToolCall("call_1", "get_weather", {"city": "Oslo"}),)),
        Message("tool", "sunny", tool_call_id="call_1", tool_name="get_weather"),
    ]
    native = build_chat(Api.OLLAMA, "m", history, sampling, stream=True, tools=[{"type": "function"}])
    assert native["options"] == {"num_predict": 100, "temperature": 0.0, "seed": 7, "num_ctx": 2048, "ignore_eos": True}
    assert (native["keep_alive"], native["think"], native["stream"]) == ("5m", False, True)
    assert native["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
    assert native["messages"][2]["tool_name"] == "get_weather"

    openai = build_chat(Api.OPENAI, "m", history, sampling, stream=True)
    assert (openai["max_tokens"], openai["seed"], openai["stream_options"]) == (100, 7, {"include_usage": True})
    assert "num_ctx" not in openai and "options" not in openai and openai["ignore_eos"] is True
    assert json.loads(openai["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert openai["messages"][2]["tool_call_id"] == "call_1"

    completion = build_generate(Api.OPENAI, "m", "Say hi", Sampling(num_predict=-1), stream=False)
    assert "max_tokens" not in completion and completion["prompt"] == "Say hi"
    assert endpoint_path(Api.OPENAI, "generate") == "/v1/completions"
    assert endpoint_path(Api.OLLAMA, "chat") == "/api/chat"
