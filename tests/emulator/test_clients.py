"""Real clients judge the wire format: the official ``ollama`` and ``openai`` packages must parse
every response the emulator sends."""

from __future__ import annotations

import ollama
import openai
import pytest

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def client(fast_emulator):
    return ollama.Client(host=fast_emulator.url)


@pytest.fixture(scope="module")
def oai(fast_emulator):
    return openai.OpenAI(base_url=fast_emulator.url + "/v1", api_key="unused")


def test_version_list_and_ps(client):
    # this ollama package has no version(); its own transport still reads the endpoint
    assert client._request_raw("GET", "/api/version").json() == {"version": "0.33.0-emulator"}
    names = [m.model for m in client.list().models]
    assert names == ["llama3.2:latest", "qwen3:0.6b", "gemma3:270m", "nomic-embed-text:latest"]
    tags = client._request_raw("GET", "/api/tags").json()["models"]  # capabilities: newer than this package
    assert tags[1]["capabilities"] == ["completion", "tools", "thinking"]
    client.generate(model="gemma3:270m", prompt="", keep_alive="1m")  # load only
    loaded = client.ps().models
    assert [m.model for m in loaded] == ["gemma3:270m"]
    assert loaded[0].context_length == 4096 and loaded[0].size_vram == loaded[0].size > 0
    assert loaded[0].expires_at is not None


def test_generate_streaming_and_not(client):
    chunks = list(
        client.generate(model="llama3.2", prompt="Why is the sky blue?", stream=True, options={"num_predict": 12})
    )
    assert [c.done for c in chunks] == [False] * 12 + [True]
    final = chunks[-1]
    assert final.done_reason == "length" and final.eval_count == 12
    assert final.total_duration >= final.load_duration + final.prompt_eval_duration + final.eval_duration
    assert len(final.context) == final.prompt_eval_count + final.eval_count
    whole = client.generate(model="llama3.2", prompt="Why is the sky blue?", options={"num_predict": 12})
    assert whole.response == "".join(c.response for c in chunks)  # same prompt, same text
    assert whole.eval_count == 12 and whole.done


def test_chat_streaming_and_not(client):
    messages = [{"role": "user", "content": "Tell me about queues"}]
    chunks = list(client.chat(model="gemma3:270m", messages=messages, stream=True, options={"num_predict": 8}))
    assert len(chunks) == 9 and chunks[-1].done and chunks[-1].message.content == ""
    whole = client.chat(model="gemma3:270m", messages=messages, options={"num_predict": 8})
    assert whole.message.content == "".join(c.message.content for c in chunks)
    assert whole.eval_count == 8 and whole.prompt_eval_count > 0


def test_chat_natural_stop(client):
    final = client.chat(model="gemma3:270m", messages=[{"role": "user", "content": "hi"}])
    assert final.done_reason == "stop"
    assert 64 <= final.eval_count <= 256  # the fast preset's natural output range


def test_thinking_model_thinks_by_default(client):
    chunks = list(client.chat(model="qwen3:0.6b", messages=[{"role": "user", "content": "2+2?"}], stream=True,
                              options={"num_predict": 20}))  # fmt: skip
    thinking = [c for c in chunks if c.message.thinking]
    content = [c for c in chunks if c.message.content]
    assert len(thinking) == 6 and len(content) == 14  # 30% of 20 tokens think, then the answer
    assert chunks.index(thinking[-1]) < chunks.index(content[0])
    off = client.chat(model="qwen3:0.6b", messages=[{"role": "user", "content": "2+2?"}], think=False,
                      options={"num_predict": 20})  # fmt: skip
    assert not off.message.thinking and off.eval_count == 20
    gen = client.generate(model="qwen3:0.6b", prompt="2+2?", options={"num_predict": 10})
    assert gen.thinking and gen.response


def test_tools(client):
    messages = [{"role": "user", "content": "Weather in Tokyo?"}]
    res = client.chat(model="llama3.2", messages=messages, tools=[WEATHER_TOOL])
    (call,) = res.message.tool_calls
    assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    assert set(call.function.arguments) == {"city", "days"}
    streamed = [c for c in client.chat(model="llama3.2", messages=messages, tools=[WEATHER_TOOL], stream=True)
                if c.message.tool_calls]  # fmt: skip
    assert len(streamed) == 1 and not streamed[0].done
    follow_up = messages + [res.message.model_dump(exclude_none=True), {"role": "tool", "content": "sunny"}]
    answer = client.chat(model="llama3.2", messages=follow_up, tools=[WEATHER_TOOL], options={"num_predict": 5})
    assert not answer.message.tool_calls and answer.message.content
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="gemma3:270m", messages=messages, tools=[WEATHER_TOOL])
    assert err.value.status_code == 400
    assert err.value.error == "registry.ollama.ai/library/gemma3:270m does not support tools"


def test_show(client):
    info = client.show("qwen3:0.6b")
    assert info.capabilities == ["completion", "tools", "thinking"] and info.details.family == "qwen3"
    assert info.modelinfo["qwen3.context_length"] == 40960


def test_embed(client):
    res = client.embed(model="nomic-embed-text", input=["a queue", "a slot"])
    assert len(res.embeddings) == 2 and len(res.embeddings[0]) == 768
    assert res.prompt_eval_count > 0 and res.total_duration >= res.load_duration
    assert client.embed(model="nomic-embed-text", input="a queue").embeddings[0] == res.embeddings[0]


def test_not_found(client):
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert (err.value.status_code, err.value.error) == (404, "model 'nope' not found")


def test_openai_chat_stream_with_usage(oai):
    stream = oai.chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:-2])  # role only on the first (v0.32.6+)
    assert chunks[-2].choices[0].finish_reason == "length" and chunks[-2].choices[0].delta.content is None
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert len({c.created for c in chunks}) == 1 and chunks[0].system_fingerprint == "fp_ollama"


def test_openai_chat_non_stream_tools_and_reasoning(oai):
    ignored = oai.chat.completions.create(
        model="gemma3:270m", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=3
    )
    assert ignored.usage.completion_tokens >= 64  # Ollama does not read max_completion_tokens
    res = oai.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}], max_tokens=7)
    assert res.choices[0].finish_reason == "length" and res.usage.completion_tokens == 7
    assert res.usage.total_tokens == res.usage.prompt_tokens + 7
    tool = oai.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "Tokyo?"}],
                                       tools=[WEATHER_TOOL])  # fmt: skip
    call = tool.choices[0].message.tool_calls[0]
    assert tool.choices[0].finish_reason == "tool_calls" and isinstance(call.function.arguments, str)
    thought = oai.chat.completions.create(model="qwen3:0.6b", messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=10)  # fmt: skip
    assert thought.choices[0].message.model_extra["reasoning"]


def test_openai_completions_and_models(oai):
    res = oai.completions.create(model="gemma3:270m", prompt="Once upon", max_tokens=6)
    assert res.choices[0].finish_reason == "length" and res.usage.completion_tokens == 6
    chunks = list(oai.completions.create(model="gemma3:270m", prompt="Once upon", max_tokens=6, stream=True,
                                         stream_options={"include_usage": True}))  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks if c.choices) == res.choices[0].text
    assert chunks[-1].usage.completion_tokens == 6
    assert all(c.usage.completion_tokens == 0 for c in chunks[:-1])  # Ollama's zero-usage quirk
    assert [m.id for m in oai.models.list()][0] == "llama3.2:latest"
    assert oai.models.retrieve("gemma3:270m").owned_by == "library"
    emb = oai.embeddings.create(model="nomic-embed-text", input="hello")
    assert len(emb.data[0].embedding) == 768


def test_openai_errors(oai):
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.body == {
        "message": "model 'nope' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="llama3.2", messages=[])
    assert bad.value.body["message"] == "[] is too short - 'messages'"


def test_openai_legacy_stream_format(emulator_factory):
    emu = emulator_factory(preset="fast", openai_legacy_stream=True)
    legacy = openai.OpenAI(base_url=emu.url + "/v1", api_key="unused")
    chunks = list(
        legacy.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert [c.choices[0].delta.role for c in chunks[:-1]] == ["assistant"] * 5  # role on every chunk
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * 4 + ["length"]  # no separate finish chunk
    assert chunks[-2].choices[0].delta.content == "" and chunks[-1].usage.completion_tokens == 4


def test_embedding_models_get_one_slot(emulator_factory):
    emu = emulator_factory(preset="fast", num_parallel=4)
    client = ollama.Client(host=emu.url)
    client.embed(model="nomic-embed-text", input="x")
    client.generate(model="gemma3:270m", prompt="", keep_alive="1m")
    state = client._request_raw("GET", "/_emulator/state").json()["models"]
    assert state["nomic-embed-text:latest"]["num_parallel"] == 1 and state["gemma3:270m"]["num_parallel"] == 4
