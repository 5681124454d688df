"""The HTTP client against a server that closes kept-alive connections (as llama.cpp does after some
streamed responses): a close that crosses the next request on the wire sends it again on a new
connection; a reset stays the server's failure. First tokens carry the kernel's receive time."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator

import pytest
from gevent.event import Event
from gevent.server import StreamServer
from geventhttpclient.connectionpool import ConnectionPool

from analysis.schema import Api, ErrorClass
from loadgen.wire.client import HostConnection, exchange

pytestmark = pytest.mark.integration  # a real server on a loopback socket

BODY = b'{"model":"m","message":{"role":"assistant","content":"hi"},"done":true,"eval_count":1}\n'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n")  # fmt: skip


def read_request(sock: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return True


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    servers: list[StreamServer] = []

    def start(handle: Callable[[socket.socket], None]) -> str:
        srv = StreamServer(("127.0.0.1", 0), lambda sock, _address: handle(sock))
        srv.start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_port}"

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def pooled_sockets_look_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race, made certain: the pool's liveness check runs before the server's close arrives."""
    monkeypatch.setattr(ConnectionPool, "_is_socket_alive", lambda self, sock: sock is not None)


def ask(conn: HostConnection):
    return exchange(conn, Api.OLLAMA, "chat", "/api/chat", {"model": "m", "messages": [], "stream": True})


def test_a_kept_alive_connection_closed_by_the_server_is_not_a_failed_request(server, pooled_sockets_look_alive):
    closed = Event()

    def one_response_then_close(sock: socket.socket) -> None:
        if read_request(sock):
            sock.sendall(RESPONSE)
        sock.close()  # a clean close (FIN) after one response, before any further request is read
        closed.set()

    conn = HostConnection(server(one_response_then_close), 5, 5)
    first = ask(conn)
    assert closed.wait(30)  # the server has closed it (on loopback its FIN is here), but the pool hands it out again
    second = ask(conn)
    assert (first.error, second.error) == (ErrorClass.NONE, ErrorClass.NONE)
    assert second.reply.content == "hi"


def test_a_reset_on_a_kept_alive_connection_is_still_the_servers_failure(server, pooled_sockets_look_alive):
    served = []

    def reset_the_second_request(sock: socket.socket) -> None:
        while read_request(sock):
            if served:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break  # close with linger 0: a reset, with the request read
            served.append(1)
            sock.sendall(RESPONSE)
        sock.close()

    conn = HostConnection(server(reset_the_second_request), 5, 5)
    assert ask(conn).error is ErrorClass.NONE
    assert ask(conn).error is ErrorClass.CONNECT


def test_the_first_token_time_is_when_its_bytes_arrived(server):
    def respond(sock: socket.socket) -> None:
        if read_request(sock):
            sock.sendall(RESPONSE)
        sock.close()

    conn = HostConnection(server(respond), 5, 5)
    result = ask(conn)
    assert result.t_start < result.t_first_token <= result.t_end
