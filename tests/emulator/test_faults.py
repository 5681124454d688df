"""Each injected fault produces its described wire behaviour (the suite's reliability tests rely on it)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.emulator.conftest import HTTP
from tests.helpers import EmulatorProcess, poll, start_emulator

pytestmark = pytest.mark.integration

BUSY = "server busy, please try again.  maximum pending requests exceeded"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 6}}


@pytest.fixture(scope="module")
def emu():
    proc = start_emulator(preset="fast")
    yield proc
    proc.stop()


@pytest.fixture
def faults(emu):
    def set_faults(spec: str) -> list[dict]:
        res = HTTP.post(emu.url + "/_emulator/faults", json={"spec": spec})
        assert res.status_code == 200, res.text
        return res.json()["faults"]

    yield set_faults
    set_faults("")


def raw_stream(port: int, path: str = "/api/chat", body: dict = CHAT) -> tuple[bytes, str]:
    """Everything the server sends for one request, and how the connection ended ("eof" or "reset")."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), len(data), data))  # fmt: skip
        out = b""
        try:
            while part := sock.recv(65536):
                out += part
        except ConnectionResetError:
            return out, "reset"
        return out, "eof"


def lines(raw: bytes) -> list[bytes]:
    """The NDJSON lines inside a chunked body."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    payload, rest = b"", body
    while rest:
        size_text, _, rest = rest.partition(b"\r\n")
        size = int(size_text, 16)
        if size == 0:
            break
        payload += rest[:size]
        rest = rest[size + 2 :]
    return [line for line in payload.split(b"\n") if line]


def test_http_500_and_503(emu, faults):
    faults("http_500")
    res = HTTP.post(emu.url + "/api/chat", json=CHAT)
    assert res.status_code == 500 and res.json()["error"].startswith("model runner has unexpectedly stopped")
    faults("http_503:path=/v1/chat/completions")
    assert HTTP.post(emu.url + "/api/chat", json=CHAT).status_code == 200  # restricted to the other path
    res = HTTP.post(emu.url + "/v1/chat/completions", json=CHAT)
    assert res.status_code == 503 and res.json()["error"]["message"] == BUSY


def test_reset_after_k_chunks(emu, faults):
    faults("reset:after=2")
    raw, end = raw_stream(emu.port)
    assert end == "reset" or raw.count(b'"done":false') == 2  # RST: the client may or may not see the data
    assert b'"done":true' not in raw
    faults("reset:after=0")
    raw, end = raw_stream(emu.port)
    assert raw == b"" and end in ("reset", "eof")


def test_error_line_mid_stream_keeps_status_200(emu, faults):
    faults("error_line:after=2:message=boom")
    raw, end = raw_stream(emu.port)
    assert raw.startswith(b"HTTP/1.1 200 OK") and end == "eof"
    got = [json.loads(line) for line in lines(raw)]
    assert [("error" in g) for g in got] == [False, False, True] and got[-1] == {"error": "boom"}
    faults("error_line:after=1")
    sse = HTTP.post(emu.url + "/v1/chat/completions", json={**CHAT, "stream": True}).text
    assert '"type":"api_error"' in sse.split("\n\n")[1] and "[DONE]" not in sse
    nonstream = HTTP.post(emu.url + "/api/chat", json={**CHAT, "stream": False})
    assert nonstream.status_code == 500  # a whole response reports the error with its status


def test_truncate_ends_without_done(emu, faults):
    faults("truncate:after=3")
    raw, end = raw_stream(emu.port)
    got = [json.loads(line) for line in lines(raw)]
    assert end == "eof" and len(got) == 3 and not any(g["done"] for g in got)
    assert raw.endswith(b"0\r\n\r\n")  # a clean end of the chunked body, just no done chunk


def test_garbage_mid_stream(emu, faults):
    faults("garbage:after=1")
    raw, _ = raw_stream(emu.port)
    body = lines(raw)
    with pytest.raises(ValueError):
        json.loads(body[1])
    assert json.loads(body[-1])["done"] is True  # the stream carries on after the garbage


def test_slow_first_byte(emu: EmulatorProcess, faults: Callable[[str], list[dict]]) -> None:
    delay_s = 0.4
    faults(f"slow_first_byte:seconds={delay_s}")
    start = time.monotonic()
    res = HTTP.post(emu.url + "/api/chat", json={**CHAT, "stream": False})
    elapsed_s = time.monotonic() - start
    assert res.status_code == 200 and elapsed_s >= delay_s
    # the delay is before the handler, not in its timers: the client waited for both, one after the other
    assert res.json()["total_duration"] / 1e9 <= elapsed_s - delay_s


def test_every_nth_and_probability(emu, faults):
    faults("http_500:every=3")
    statuses = [HTTP.post(emu.url + "/api/chat", json={**CHAT, "stream": False}).status_code for _ in range(6)]
    assert statuses == [200, 200, 500, 200, 200, 500]
    faults("http_500:p=0")
    assert HTTP.post(emu.url + "/api/chat", json={**CHAT, "stream": False}).status_code == 200
    listed = faults("reset:p=0.5:after=4,truncate")
    assert [(f["kind"], f["p"], f["after"], f["path"]) for f in listed] == [
        ("reset", 0.5, 4, ""),
        ("truncate", 1.0, 1, ""),
    ]
    assert HTTP.get(emu.url + "/_emulator/faults").json()["faults"] == listed
    bad = HTTP.post(emu.url + "/_emulator/faults", json={"spec": "explode"})
    assert bad.status_code == 400 and "kind" in bad.json()["error"]


def test_faults_from_the_command_line():
    emu = start_emulator(preset="fast", faults="http_503:path=/api/generate")
    try:
        res = HTTP.post(emu.url + "/api/generate", json={"model": "llama3.2", "prompt": "x"})
        assert (res.status_code, res.json()) == (503, {"error": BUSY})
    finally:
        emu.stop()


def test_refuse_closes_and_reopens_the_port(emu: EmulatorProcess) -> None:
    refuse_s = 1.0  # long enough to see the port closed
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=emu.url, limits=limits, timeout=10) as open_connection:  # it carries on throughout

        def listening() -> bool:
            return open_connection.get("/_emulator/state").json()["listening"]

        assert listening()
        start = time.monotonic()
        assert open_connection.post("/_emulator/refuse", json={"seconds": refuse_s}).json() == {
            "refusing_for": refuse_s
        }
        poll(lambda: not listening(), "the port closed", interval=0.01)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", emu.port)).close()
        poll(listening, "the port reopened", interval=0.01)
        assert time.monotonic() - start >= refuse_s
    socket.create_connection(("127.0.0.1", emu.port)).close()  # new connections are accepted again
