"""Error shapes and HTTP details, as Ollama (Gin + encoding/json) produces them."""

from __future__ import annotations

import socket

import pytest

from tests.emulator.conftest import HTTP, ndjson

pytestmark = pytest.mark.integration


def post(emu, path: str, body: bytes | dict, **kw):
    if isinstance(body, dict):
        return HTTP.post(emu.url + path, json=body, **kw)
    return HTTP.post(emu.url + path, content=body, **kw)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/generate", b"", 400, "missing request body"),
        ("/api/chat", b"{bad", 400, "invalid character 'b' looking for beginning of object key string"),
        ("/api/chat", b'{"model":"llama3.2"', 400, "unexpected EOF"),
        ("/api/generate", b'{"model":"llama3.2","stream":"yes"}', 400,
         "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool"),
        ("/api/chat", b'{"model":"llama3.2","messages":[{"role":"user","content":1}]}', 400,
         "json: cannot unmarshal number into Go struct field ChatRequest.messages.content of type string"),
        ("/api/generate", b'{"model":"llama3.2","prompt":"x","keep_alive":true}', 400, "Unsupported type: 'bool'"),
        ("/api/generate", b'{"model":"llama3.2","prompt":"x","keep_alive":"soon"}', 400,
         'time: invalid duration "soon"'),
        ("/api/generate", b'{"model":"llama3.2","prompt":"x","think":"x"}', 400,
         'invalid think value: "x" (must be "high", "medium", "low", "max", true, or false)'),
        ("/api/generate", b'{"model":"llama3.2","prompt":"x","think":true}', 400,
         '"llama3.2" does not support thinking'),
        ("/api/generate", b'{"model":"nomic-embed-text","prompt":"x"}', 400,
         '"nomic-embed-text" does not support generate'),
        ("/api/chat", b'{"model":"nomic-embed-text","messages":[{"role":"user","content":"x"}]}', 400,
         '"nomic-embed-text" does not support chat'),
        ("/api/generate", b'{"model":"llama3.2","prompt":"x","options":{"num_ctx":"big"}}', 500,
         'option "num_ctx" must be of type integer'),
        ("/api/generate", b'{"model":"","prompt":"x"}', 404, "model '' not found"),
        ("/api/chat", b'{"messages":[]}', 400, "model is required"),
        ("/api/generate", b'{"model":"missing:7b","prompt":"x"}', 404, "model 'missing:7b' not found"),
        ("/api/chat", b'{"model":"llama3.2","messages":[],"top_logprobs":21}', 400,
         "top_logprobs must be between 0 and 20"),
        ("/api/embed", b'{"model":"nomic-embed-text","input":"a b c d e f g h","truncate":false,'
                       b'"options":{"num_ctx":4}}', 400, "the input length exceeds the context length"),
    ],
)  # fmt: skip
def test_native_errors(fast_emulator, path, body, status, message):
    res = post(fast_emulator, path, body)
    assert (res.status_code, res.json()) == (status, {"error": message})
    assert res.headers["content-type"] == "application/json; charset=utf-8"


def test_openai_error_shapes(fast_emulator):
    bad = post(fast_emulator, "/v1/chat/completions", b"{bad")
    assert bad.status_code == 400
    assert bad.json() == {"error": {"message": "invalid character 'b' looking for beginning of object key string",
                                    "type": "invalid_request_error", "param": None, "code": None}}  # fmt: skip
    missing = post(fast_emulator, "/v1/completions", {"model": "nope", "prompt": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert post(fast_emulator, "/v1/chat/completions", b"").json()["error"]["message"] == "EOF"


def test_routes_methods_and_head(fast_emulator):
    url = fast_emulator.url
    missing = HTTP.get(url + "/api/nothing")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = HTTP.get(url + "/api/chat")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")
    head = HTTP.head(url + "/")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "17"
    assert HTTP.head(url + "/api/tags").status_code == 200
    assert HTTP.head(url + "/api/ps").status_code == 405
    assert HTTP.get(url + "/").text == "Ollama is running"


@pytest.mark.parametrize(("host", "status"), [
    ("evil.example.com", 403), ("localhost:11434", 200), ("127.0.0.1", 200), ("[::1]:80", 200),
    ("10.1.2.3", 200), ("box.internal", 200), ("printer.local:631", 200), ("8.8.8.8", 403),
])  # fmt: skip
def test_host_header_guard_on_loopback(fast_emulator, host, status):
    res = HTTP.get(fast_emulator.url + "/api/version", headers={"Host": host})
    assert res.status_code == status
    if status == 403:
        assert res.content == b""


def _raw(port: int, data: bytes, until: bytes = b"0\r\n\r\n") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while until not in out:
            part = sock.recv(65536)
            if not part:
                break
            out += part
        return out


def test_chunked_request_body_keep_alive_and_close(fast_emulator):
    body = b'{"model":"llama3.2","prompt":"hi","options":{"num_predict":2}}'
    half = len(body) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    req = (b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
           b"Expect: 100-continue\r\n\r\n" + chunked)  # fmt: skip
    out = _raw(fast_emulator.port, req + b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
               until=b"Ollama is running")  # fmt: skip
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in out and b'"done":true' in out
    assert out.count(b"HTTP/1.1 200 OK") == 2 and b"Connection: close" in out  # two requests, one connection


def test_stream_headers_and_created_at(fast_emulator):
    res = post(fast_emulator, "/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}],
                                            "options": {"num_predict": 3}})  # fmt: skip
    assert res.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(res)
    stamps = [line["created_at"] for line in lines]
    assert all(s.endswith("Z") and "T" in s for s in stamps) and stamps == sorted(stamps)
    assert len(set(stamps)) == 4  # stamped per chunk
    assert "total_duration" not in lines[0] and lines[-1]["eval_count"] == 3
