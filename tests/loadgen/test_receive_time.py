"""The first token's time is when its bytes reached this machine, not when the client got round to reading
them: proven with chunks that arrive while the process is kept busy (no greenlet can run), against the
client's own read time, which is what a system without ``SO_TIMESTAMPNS`` records (run.json then says so:
``tests/loadgen/test_run_hosts.py``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import gevent
import greenlet
import pytest
from gevent import socket

from analysis.schema import Api, ErrorClass, FirstTokenClock
from loadgen.wire import client
from loadgen.wire.client import HostConnection, RequestOutcome, exchange

pytestmark = pytest.mark.integration  # a real server on a loopback socket

GAP_S = 0.1  # busy before each chunk goes out
HOLD_S = 0.3  # busy after the last: how late a read-time stamp would be, at least
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")


def chunked(line: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(line), line)


def content(text: str) -> bytes:
    return chunked(b'{"model":"m","message":{"role":"assistant","content":"%s"},"done":false}\n' % text.encode())


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST = chunked(b'{"model":"m","message":{"role":"assistant","content":""},"done":true,"eval_count":2}\n') + b"0\r\n\r\n"


@dataclass(frozen=True)
class Timeline:
    """When the server sent each chunk (between the two times of a pair), when the process could read
    again (``busy_end``), and what the client recorded."""

    sent: list[tuple[float, float]]
    busy_end: float
    outcome: RequestOutcome

    @property
    def window(self) -> float:
        """How long the last chunk sent while busy waited, at least, before any greenlet could read it."""
        return self.busy_end - self.sent[-1][1]

    def near_send(self, index: int) -> bool:
        """``t_first_token`` lies between the send of chunk ``index`` and a tenth of ``window`` after it."""
        sent_from, sent_to = self.sent[index]
        return sent_from <= self.outcome.t_first_token <= sent_to + self.window / 10


def spin(seconds: float) -> float:
    """Keep the process busy for ``seconds`` without a gevent switch; returns the time it stopped."""
    end = time.time() + seconds
    while (now := time.time()) < end:
        pass
    return now


def read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def stream_while_busy(listener: socket.socket, chunks: Sequence[bytes]) -> Timeline:
    """One streamed request whose ``chunks`` the server sends ``GAP_S`` apart while this process spins: the
    client's greenlet is waiting for them, and can run only ``HOLD_S`` after the last was sent."""
    conn = HostConnection(f"http://127.0.0.1:{listener.getsockname()[1]}", 5, 5)
    request = gevent.spawn(exchange, conn, Api.OLLAMA, "chat", "/api/chat", {"model": "m", "messages": []})
    server, _ = listener.accept()
    with server:
        read_request(server)
        server.sendall(HEAD)
        gevent.idle()  # the client reads the headers (the loop serves ready sockets before it idles) and waits
        switches: list[str] = []
        sent = []
        greenlet.settrace(lambda event, _args: switches.append(event))
        try:
            for chunk in chunks:
                spin(GAP_S)
                sent_from = time.time()
                server.send(chunk)  # a few bytes into an empty buffer: sent at once, no switch
                sent.append((sent_from, time.time()))
            busy_end = spin(HOLD_S)
        finally:
            greenlet.settrace(None)
        gevent.idle()  # the client reads what arrived, alone: the loop serves its ready socket before it idles
        server.sendall(LAST)
        outcome = request.get(timeout=10)
    conn.close()
    assert outcome.error is ErrorClass.NONE and outcome.reply.content, outcome
    assert not switches, "a greenlet ran while the process was busy"
    assert outcome.t_end >= busy_end  # the response was read only once the process was free
    return Timeline(sent, busy_end, outcome)


@linux_only
def test_the_first_token_is_timed_when_it_arrived_not_when_it_was_read(listener):
    assert client.kernel_receive_times()
    timeline = stream_while_busy(listener, [content("hi")])
    assert timeline.near_send(0), timeline


def test_without_kernel_receive_times_the_first_token_is_timed_when_it_was_read(listener, monkeypatch):
    monkeypatch.setattr(client, "kernel_receive_times", lambda: False)
    assert client.first_token_clock("http://127.0.0.1:1") is FirstTokenClock.CLIENT_READ
    timeline = stream_while_busy(listener, [content("hi")])
    assert timeline.outcome.t_first_token >= timeline.busy_end - timeline.window / 10, timeline
    assert not timeline.near_send(0)  # what the test above tells apart


@linux_only
def test_chunks_read_together_carry_the_arrival_of_the_last_of_them(listener):
    """The kernel gives a read the receive time of the newest bytes it returns (TCP merges segments that
    wait in the socket): a first token that waited behind the next chunk is timed at that chunk's arrival,
    still before the read."""
    timeline = stream_while_busy(listener, [content("hi"), content(" there")])
    assert timeline.outcome.reply.content == "hi there"
    assert timeline.near_send(1) and not timeline.near_send(0), timeline
