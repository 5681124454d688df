"""A small HTTP/1.1 server on asyncio protocols, built for thousands of concurrent streams.

Keep-alive and pipelining, ``Content-Length`` and chunked request bodies, ``Expect: 100-continue``,
chunked streaming responses written with one ``transport.write`` per chunk, ``TCP_NODELAY``. When a
client goes away (EOF or reset), the task serving its request is cancelled at once, so whatever the
request held (a parallel slot, a place in a queue) is freed immediately, as Go's request context does.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote

from emulator.clock import monotonic

_MAX_HEAD: Final = 64 * 1024
_REASONS: Final = {s.value: s.phrase for s in HTTPStatus} | {499: "Client Closed Request"}


class Request:
    """One parsed request. ``t_received`` is the monotonic time the whole request had arrived."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "t_received")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool):
        self.method = method
        path, _, self.query = target.partition("?")
        self.path = unquote(path)
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.t_received = monotonic()


Handler = Callable[[Request, "Connection"], Awaitable[None]]


class _BadRequest(Exception):
    pass


class Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the handler, writes the response."""

    def __init__(self, handler: Handler, connections: set[Connection]) -> None:
        self._handler = handler
        self._connections = connections
        self._buf = bytearray()
        self._head: tuple[str, str, dict[str, str], bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.responded = False  # headers of the current response are out
        self._head_request = False  # the current request is a HEAD: headers only
        self._closing = False  # the current request asked for Connection: close

    # --- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._task is None:
            self._next_request()

    def eof_received(self) -> bool:
        return False  # a half-closed client is gone: close, which cancels its request

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        if self._task is not None:
            self._task.cancel()

    # --- requests -----------------------------------------------------------------------------------
    def _next_request(self) -> None:
        try:
            request = self._parse()
        except _BadRequest as exc:
            self.send(400, f"400 Bad Request: {exc}".encode(), "text/plain; charset=utf-8", keep_alive=False)
            return
        if request is not None:
            self.responded = False
            self._head_request = request.method == "HEAD"
            self._closing = not request.keep_alive
            self._task = asyncio.get_running_loop().create_task(self._serve(request))

    def _parse(self) -> Request | None:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise _BadRequest("header too large")
                return None
            self._head = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if self._head[2].get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        method, target, headers, keep_alive = self._head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _take_chunked(buf)
            if body is None:
                return None
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest("bad Content-Length") from None
            if len(buf) < length:
                return None
            body = bytes(buf[:length])
            del buf[:length]
        self._head = None
        return Request(method, target, headers, body, keep_alive)

    async def _serve(self, request: Request) -> None:
        try:
            await self._handler(request, self)
        except asyncio.CancelledError:
            return  # the client went away
        except Exception:  # noqa: BLE001 - a handler bug must not kill the server
            traceback.print_exc(file=sys.stderr)
            if not self.responded and not self.closed:
                self.send(500, b'{"error":"internal emulator error"}', "application/json; charset=utf-8")
        finally:
            self._task = None
        if self.closed:
            return
        if not request.keep_alive:
            self.transport.close()  # type: ignore[union-attr]
        elif self._buf:
            self._next_request()

    # --- responses ----------------------------------------------------------------------------------
    def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: tuple[tuple[str, str], ...] = (),
        keep_alive: bool = True,
    ) -> None:
        """A complete response with ``Content-Length`` (headers only for a HEAD request)."""
        head = _status_line(status) + _date_header()
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if self._closing or not keep_alive:
            head += "Connection: close\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.responded = True
        if self.closed:
            return
        self.transport.write(head.encode() if self._head_request else head.encode() + body)  # type: ignore[union-attr]
        if not keep_alive:
            self.transport.close()  # type: ignore[union-attr]

    def chunked_head(self, status: int, content_type: str) -> bytes:
        """Headers of a chunked response, to be written together with its first chunk."""
        head = _status_line(status) + _date_header() + f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
        if self._closing:
            head += "Connection: close\r\n"
        return (head + "\r\n").encode()

    def write(self, data: bytes) -> None:
        """Raw bytes (a chunk, or headers and a chunk); the response counts as started."""
        self.responded = True
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]

    def abort(self) -> None:
        """Reset the TCP connection (RST), as a crashed server would."""
        if not self.closed:
            self.transport.abort()  # type: ignore[union-attr]

    def close(self) -> None:
        if not self.closed:
            self.transport.close()  # type: ignore[union-attr]


def chunk(payload: bytes) -> bytes:
    """``payload`` framed as one HTTP chunk."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


LAST_CHUNK: Final = b"0\r\n\r\n"


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], bool]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest("malformed request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("malformed header")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return method, target, headers, keep_alive


def _take_chunked(buf: bytearray) -> bytes | None:
    """Decode a complete chunked body from the front of ``buf`` and remove it; ``None`` if incomplete."""
    body = bytearray()
    pos = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # optional trailers end with an empty line
            if end < 0:
                if buf[eol + 2 : eol + 4] == b"\r\n":
                    end = eol
                else:
                    return None
            del buf[: end + 4]
            return bytes(body)
        start, stop = eol + 2, eol + 2 + size
        if len(buf) < stop + 2:
            return None
        body += buf[start:stop]
        pos = stop + 2


def _status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"


_date_cache: list[Any] = [0, ""]  # [the second it is for, the header]


def _date_header() -> str:
    now = int(monotonic())
    if _date_cache[0] != now or not _date_cache[1]:
        _date_cache[0] = now
        _date_cache[1] = f"Date: {formatdate(usegmt=True)}\r\n"
    header: str = _date_cache[1]
    return header


class HttpServer:
    """A listening socket that can be closed and reopened on the same port (``refuse`` fault)."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self.connections: set[Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is in ``self.port`` afterwards."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self._handler, self.connections),
            host=self.host or None,
            port=self.port,
            reuse_address=True,
            backlog=4096,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def listening(self) -> bool:
        return self._server is not None

    def stop_listening(self) -> None:
        """Close the listening socket; open connections stay up."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def refuse_for(self, seconds: float) -> None:
        """Refuse new connections for ``seconds``, then listen again on the same port."""
        self.stop_listening()
        await asyncio.sleep(seconds)
        await self.start()

    def close(self) -> None:
        self.stop_listening()
        for conn in list(self.connections):
            conn.close()
