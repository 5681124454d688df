"""Whatever a server or the network does, a request ends as one ``RequestOutcome`` with an error class, never
an exception that would lose its record. Pure: a scripted connection stands in for the socket."""

from __future__ import annotations

import json
import random
import socket
from dataclasses import dataclass, field

import pytest
from geventhttpclient.response import HTTPConnectionClosed

from analysis.schema import Api, ErrorClass
from loadgen.wire.client import HostConnection, RequestOutcome, exchange
from loadgen.wire.protocol import ProtocolError, parse_body, stream_parser

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
CHUNK = b'{"message":{"role":"assistant","content":"Hel"},"done":false}\n'
DONE = b'{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":1}\n'


@dataclass
class ScriptedResponse:
    """A response whose body lines arrive in order, then ``then`` is raised (or the stream ends)."""

    status_code: int
    lines: list[bytes] = field(default_factory=list)
    then: BaseException | None = None
    message_complete: bool = True
    _sock: None = None

    def read(self, limit: int | None = None) -> bytes:
        return b"".join(self.lines)[:limit]

    def readline(self, sep: bytes) -> bytes:
        if self.lines:
            return self.lines.pop(0)
        if self.then is not None:
            raise self.then
        return b""

    def release(self) -> None:
        pass


@dataclass
class ScriptedConnection:
    """Answers ``post`` with a response, or raises what a failed connection raises; redacts ``_token`` as
    the real connection does."""

    answer: ScriptedResponse | BaseException
    _token: str = ""
    stamped: bool = False  # no kernel receive times: the client times reads itself
    redact = HostConnection.redact

    def post(self, path: str, body: bytes, request_id: str = "") -> ScriptedResponse:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def send(answer: ScriptedResponse | BaseException, token: str = "") -> RequestOutcome:
    conn = ScriptedConnection(answer, token)
    return exchange(conn, Api.OLLAMA, "chat", "/api/chat", CHAT)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failure", "refused"), [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (OSError(113, "No route to host"), True),
    (socket.gaierror(-2, "Name or service not known"), True),
    (ConnectionResetError(104, "Connection reset by peer"), False),  # accepted, then reset before a response
    (HTTPConnectionClosed("connection closed."), False),
])
def test_a_connection_that_fails_before_any_response_is_connect(failure: BaseException, refused: bool) -> None:
    ex = send(failure)
    assert (ex.error, ex.status, ex.refused) == (ErrorClass.CONNECT, 0, refused)
    # Only a host that takes no connection at all is down (the router then avoids it for a while).


def test_no_data_within_the_read_timeout_is_timeout() -> None:
    ex = send(TimeoutError("timed out"))
    assert (ex.error, ex.status, ex.refused) == (ErrorClass.TIMEOUT, 0, False)


@pytest.mark.parametrize(("status", "error"), [
    (404, ErrorClass.HTTP_4XX), (500, ErrorClass.HTTP_5XX), (503, ErrorClass.BUSY_503),
])
def test_an_error_status_keeps_the_servers_message(status: int, error: ErrorClass) -> None:
    ex = send(ScriptedResponse(status, [b'{"error":"model \'x\' not found"}']))
    assert (ex.error, ex.status, ex.error_detail) == (error, status, "model 'x' not found")


def test_a_message_that_quotes_the_token_back_is_redacted() -> None:
    ex = send(ScriptedResponse(401, [b'{"error":"unauthorized: rejected \'Bearer sk-123\'"}']), token="sk-123")
    assert (ex.error, ex.error_detail) == (ErrorClass.HTTP_4XX, "unauthorized: rejected 'Bearer [redacted]'")


@pytest.mark.parametrize(("lines", "then", "error", "detail"), [
    ([CHUNK], ConnectionResetError(104, "Connection reset by peer"), ErrorClass.STREAM_BROKEN, "reset"),
    ([CHUNK, b'{"error":"model runner has unexpectedly stopped"}\n'], None, ErrorClass.STREAM_BROKEN,
     "model runner has unexpectedly stopped"),
    ([CHUNK], None, ErrorClass.STREAM_BROKEN, "stream ended before its final chunk"),
    ([CHUNK, b"\x00\xffgarbage{not json\n", DONE], None, ErrorClass.BAD_RESPONSE, "not JSON"),
    ([CHUNK, b'{"message":"text where an object belongs","done":false}\n'], None, ErrorClass.BAD_RESPONSE,
     "chat chunk without a message"),
    ([CHUNK, b'{"message":{"content":["a list"]},"done":false}\n'], None, ErrorClass.BAD_RESPONSE,
     "unexpected JSON shape"),
    ([CHUNK], ValueError("a bug in a library"), ErrorClass.BAD_RESPONSE, "a bug in a library"),
])
def test_a_stream_that_goes_wrong_after_200_is_classified(lines: list[bytes], then: BaseException | None,
                                                          error: ErrorClass, detail: str) -> None:
    ex = send(ScriptedResponse(200, list(lines), then))
    assert (ex.error, ex.status) == (error, 200)
    assert detail in ex.error_detail
    assert ex.t_first_token is not None and ex.t_start <= ex.t_first_token <= ex.t_end  # what arrived still counts


def test_an_unforeseen_exception_before_any_response_is_still_recorded() -> None:
    ex = send(RuntimeError("Cannot resolve gpu1:11434"))
    assert (ex.error, ex.status, ex.error_detail) == (ErrorClass.CONNECT, 0, "RuntimeError: Cannot resolve gpu1:11434")


KEYS = ["message", "response", "content", "thinking", "tool_calls", "function", "name", "arguments", "done",
        "done_reason", "eval_count", "total_duration", "eval_duration", "choices", "delta", "text", "finish_reason",
        "usage", "prompt_tokens", "prompt_tokens_details", "timings", "predicted_ms", "cache_n"]
SCALARS: list[object] = [None, 0, 1.5, "x", "", True, [], {}]


def shape(rng: random.Random, depth: int = 0) -> dict[str, object]:
    """A random JSON object of the keys the parsers read, nested, with every JSON type as a value."""
    value: dict[str, object] = {}
    for key in rng.sample(KEYS, rng.randint(1, 5)):
        value[key] = shape(rng, depth + 1) if depth < 2 and rng.random() < 0.4 else rng.choice(SCALARS)
        if rng.random() < 0.3:
            value[key] = [value[key]]
    return value


@pytest.mark.parametrize("api", [Api.OLLAMA, Api.OPENAI])
@pytest.mark.parametrize("endpoint", ["chat", "generate"])
def test_json_of_any_shape_parses_or_raises_protocol_error(api: Api, endpoint: str) -> None:
    rng = random.Random(f"{api}{endpoint}")
    for _ in range(3000):
        data = json.dumps(shape(rng)).encode()
        try:
            parser = stream_parser(api, endpoint)
            parser.feed(data if api is Api.OLLAMA else b"data: " + data)
            parser.finish()
        except ProtocolError:
            pass
        try:
            parse_body(api, endpoint, data)
        except ProtocolError:
            pass
