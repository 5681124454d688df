"""HTTP transport for LLM requests: keep-alive pools per host and a streaming read with exact times.

Built on geventhttpclient directly rather than Locust's sessions: ``readline`` returns each line as
soon as it arrives (Locust's ``FastHttpSession.iter_lines`` waits for 1 KiB first, which would add
hundreds of milliseconds to time-to-first-token), no request is ever retried behind our back (but
one the server never read: see ``HostConnection.post``), and every failure becomes an error class
instead of an exception. Locust's statistics are fed by the
caller from the returned ``RequestOutcome``.

First-token times come from the kernel: plain-HTTP sockets have ``SO_TIMESTAMPNS`` set, and every
read takes the moment the kernel received the bytes it returns. A first token's time is when it
reached this machine, not when this process got round to parsing it: with hundreds of streams a worker
handles a server's burst of chunks one after another, and the last of them would otherwise be stamped
milliseconds late (``docs/performance.md``). Over TLS, or where the system has no ``SO_TIMESTAMPNS``
(checked at run time), it is the moment of the read; ``first_token_clock`` says which, for run.json.
The end of a response is when it had been read.
"""

from __future__ import annotations

import errno
import json
import logging
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit

import gevent
from gevent import GreenletExit, socket
from geventhttpclient import HTTPClient
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError, HTTPSocketPoolResponse

from analysis.schema import Api, ErrorClass, FirstTokenClock
from loadgen.wire.protocol import (
    CONTENT,
    ERROR,
    FINAL,
    THINKING,
    ProtocolError,
    Reply,
    error_message,
    parse_body,
    stream_parser,
)

#: Connections per host and timeout pair: more than any worker keeps in flight, so requests never
#: queue inside the client (that wait would be counted as server latency).
POOL_SIZE: Final = 65_536
#: The most of an error body kept for its message.
ERROR_BODY_LIMIT: Final = 4096
#: What a token is replaced with in anything the client reports.
REDACTED: Final = "[redacted]"
#: Connection errors that mean nothing is accepting connections at the host (it is down or unreachable).
UNREACHABLE_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})

log = logging.getLogger(__name__)
_logged_unexpected: set[type[BaseException]] = set()

#: Linux's SO_TIMESTAMPNS (its asm-generic value; the socket module does not name it): the kernel stamps
#: each packet it receives, and ``recvmsg`` returns the stamp as a ``struct timespec`` beside the bytes.
SO_TIMESTAMPNS: Final = 35
_STAMP_SPACE: Final = socket.CMSG_SPACE(16)
_TIMESPEC: Final = struct.Struct("@qq")

#: When the bytes of the latest ``StampedSocket`` read reached this machine (epoch seconds). Read right
#: after the read that set it, before the greenlet can yield: gevent switches only inside blocking calls.
_arrival = 0.0
#: The latest ``StampedSocket`` read met the clean end (FIN) of a connection that had already served a
#: response: the server closed a kept-alive connection as the next request went out (read the same way).
_stale_eof = False


class StampedSocket(socket.socket):
    """A TCP socket whose reads note when the kernel received the bytes they return (``_arrival``);
    the time of the read itself where the kernel gave no stamp. ``served``: the pool has had it back
    after a complete response (it is a kept-alive connection)."""

    __slots__ = ("served",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.served = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        global _arrival, _stale_eof
        try:
            data, ancillary, _, _ = self.recvmsg(bufsize, _STAMP_SPACE, flags)
        except OSError:  # a reset, a timeout: never the stale keep-alive case
            _stale_eof = False
            raise
        _stale_eof = not data and self.served
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                _arrival = seconds + nanoseconds * 1e-9
                return data
        _arrival = time.time()
        return data


@cache
def kernel_receive_times() -> bool:
    """Whether this system gives reads the kernel's receive time: Linux, with ``SO_TIMESTAMPNS`` accepted
    by a TCP socket (tried once)."""
    if sys.platform != "linux":
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def first_token_clock(url: str) -> FirstTokenClock:
    """What times the first tokens from ``url``: the kernel's receive time (plain HTTP on a system that has
    it) or the moment the client read them (TLS reads bypass the stamped ``recv``)."""
    if urlsplit(url).scheme == "http" and kernel_receive_times():
        return FirstTokenClock.KERNEL_RECEIVE
    return FirstTokenClock.CLIENT_READ


class StampedPool(ConnectionPool):
    """geventhttpclient's keep-alive pool with ``StampedSocket`` connections (plain HTTP on Linux)."""

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> StampedSocket:
        sock = StampedSocket(family, socktype, protocol)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return sock

    def return_socket(self, sock: socket.socket) -> None:
        if isinstance(sock, StampedSocket):
            sock.served = True
        super().return_socket(sock)


@dataclass(slots=True)
class RequestOutcome:
    """One request/response as the client saw it."""

    reply: Reply
    status: int
    error: ErrorClass
    error_detail: str
    t_start: float  # epoch seconds: the send
    t_first_token: float | None  # when the first content reached this machine
    t_first_thinking: float | None
    t_end: float  # when the response had been read to its end, or the request failed
    refused: bool = False  # no connection could be made: the host is down, not merely failing this request


class RequestCancelled(BaseException):
    """The request was interrupted: its greenlet killed (the run is stopping) or a Ctrl-C raised in it.
    Carries the partial exchange, so the caller can record it as ``cancelled``, and the interruption,
    which the caller re-raises."""

    def __init__(self, partial: RequestOutcome, cause: BaseException) -> None:
        super().__init__("request cancelled")
        self.outcome = partial
        self.cause = cause


class HostConnection:
    """A keep-alive connection pool to one host, with fixed connect and read (idle) timeouts, sending
    ``token`` (if any) as ``Authorization: Bearer <token>``."""

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, token: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.base_path = parts.path.rstrip("/")
        self._token = token
        self._client = HTTPClient(
            parts.hostname,
            port=parts.port,
            ssl=parts.scheme == "https",
            concurrency=POOL_SIZE,
            connection_timeout=connect_timeout,
            network_timeout=read_timeout,
            headers={"Content-Type": "application/json", "Accept-Encoding": "identity", **auth_headers(token)},
        )
        #: whether reads stamp ``_arrival`` with the kernel's receive time
        self.stamped = first_token_clock(url) is FirstTokenClock.KERNEL_RECEIVE
        if self.stamped:
            self._client._connection_pool.close()
            self._client._connection_pool = StampedPool(
                # geventhttpclient types HTTPClient.port as optional; its __init__ always sets it
                parts.hostname, self._client.port, parts.hostname, self._client.port, size=POOL_SIZE,  # type: ignore[arg-type]
                connection_timeout=connect_timeout, network_timeout=read_timeout,
            )  # fmt: skip

    def redact(self, text: str) -> str:
        """``text`` with the token replaced: a server's error message may quote the request's headers."""
        return text.replace(self._token, REDACTED) if self._token else text

    def post(self, path: str, body: bytes, request_id: str = "") -> HTTPSocketPoolResponse:
        """Send a POST and return once the response headers have arrived.

        Sent again, once, on a new connection if the kept-alive one it went out on turned out closed
        (a clean end before any byte of a response): the server closed it before reading the request
        (llama.cpp closes a connection after some streamed responses, and the close can cross the next
        request on the wire), so nothing was applied; browsers and httpx do the same. A reset, or a
        close on a new connection, is the server's failure and is recorded as such."""
        headers = {"X-Request-Id": request_id} if request_id else None
        try:
            return self._client.request("POST", self.base_path + path, body=body, headers=headers)
        except HTTPConnectionClosed:
            if not (self.stamped and _stale_eof):
                raise
        return self._client.request("POST", self.base_path + path, body=body, headers=headers)

    def get(self, path: str) -> HTTPSocketPoolResponse:
        """Send a GET and return once the response headers have arrived."""
        return self._client.request("GET", self.base_path + path)

    def close(self) -> None:
        self._client.close()


def auth_headers(token: str) -> dict[str, str]:
    """The header that carries a bearer token (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def exchange(
    conn: HostConnection, api: Api, endpoint: str, path: str, body: Mapping[str, Any], request_id: str = ""
) -> RequestOutcome:
    """Send one LLM request and read its response to the end, timing it. ``request_id`` goes out as
    ``X-Request-Id`` (``<session_id>/<step>``), so a server's logs or trace can be joined to the records.

    Never raises for a server or network failure: those come back as a ``RequestOutcome`` with an error
    class. An interruption (a greenlet kill, a KeyboardInterrupt) raises ``RequestCancelled`` carrying
    the partial exchange.
    """
    payload = json.dumps(body).encode()
    stream = bool(body.get("stream", api is Api.OLLAMA))
    t_wall = time.time()
    t0 = time.perf_counter()

    def now() -> float:  # epoch, monotonic since the send
        return t_wall + (time.perf_counter() - t0)

    arrived = _arrived if conn.stamped else now  # when the bytes just read reached this machine
    first_token = first_thinking = None
    status, error, detail, refused = 0, ErrorClass.NONE, "", False
    reply = Reply()
    response: HTTPSocketPoolResponse | None = None
    try:
        response = conn.post(path, payload, request_id)
        status = response.status_code
        if status != 200:
            detail = error_message(response.read(ERROR_BODY_LIMIT))
            error = _status_error(status)
        elif not stream:
            reply = parse_body(api, endpoint, response.read())
        else:
            parser = stream_parser(api, endpoint)
            readline, feed = response.readline, parser.feed
            while line := readline(b"\n"):
                events = feed(line)
                if events:
                    if events & CONTENT and first_token is None:
                        first_token = arrived()
                    if events & THINKING and first_thinking is None:
                        first_thinking = arrived()
                    if events & ERROR:
                        break
                    if events & FINAL and first_token is None and first_thinking is None:
                        first_token = arrived()  # an empty answer: its final chunk is its first output
            reply = parser.finish()
        if not error:
            error, detail = _reply_error(reply)
    except ProtocolError as e:
        error, detail = ErrorClass.BAD_RESPONSE, str(e)
    except (TimeoutError, socket.timeout, gevent.Timeout) as e:
        error, detail = ErrorClass.TIMEOUT, _describe(e, "no data within the read timeout")
    except (OSError, HTTPParseError) as e:
        error, detail = _network_error(e, status)
        refused = not status and _is_unreachable(e)
    except (GreenletExit, KeyboardInterrupt) as interruption:
        error, detail = ErrorClass.CANCELLED, "the run stopped before the response completed"
        partial = RequestOutcome(reply, status, error, detail, t_wall, first_token, first_thinking, now())
        raise RequestCancelled(partial, interruption) from None
    except Exception as e:  # what no branch above foresaw: still one record, never a lost request
        error, detail = _unexpected(e, status)
    finally:
        if response is not None:
            _release(response)
    return RequestOutcome(reply, status, error, conn.redact(detail), t_wall, first_token, first_thinking, now(),
                          refused)


def _arrived() -> float:
    return _arrival


def _status_error(status: int) -> ErrorClass:
    if status == 503:
        return ErrorClass.BUSY_503
    return ErrorClass.HTTP_4XX if 400 <= status < 500 else ErrorClass.HTTP_5XX


def _reply_error(reply: Reply) -> tuple[ErrorClass, str]:
    if reply.error:
        return ErrorClass.STREAM_BROKEN, reply.error
    if not reply.complete:
        return ErrorClass.STREAM_BROKEN, "stream ended before its final chunk"
    return ErrorClass.NONE, ""


def _network_error(e: BaseException, status: int) -> tuple[ErrorClass, str]:
    if status:  # the response had begun: the stream broke
        return ErrorClass.STREAM_BROKEN, _describe(e, "connection lost mid-response")
    if isinstance(e, OSError) and e.errno in (errno.ETIMEDOUT,):
        return ErrorClass.TIMEOUT, _describe(e, "connect timed out")
    return ErrorClass.CONNECT, _describe(e, "connection failed")


def _is_unreachable(e: BaseException) -> bool:
    """Whether ``e`` says no connection could be made (refused, no route, unknown name), as opposed to
    a connection that was made and then lost."""
    return isinstance(e, socket.gaierror) or (isinstance(e, OSError) and e.errno in UNREACHABLE_ERRNOS)


def _unexpected(e: Exception, status: int) -> tuple[ErrorClass, str]:
    """An exception no branch foresaw (a client library's own, or a bug here): logged once per type with
    its traceback, and recorded as a bad response (or a failed connection, if no response had begun)."""
    if type(e) not in _logged_unexpected:
        _logged_unexpected.add(type(e))
        log.warning("unexpected %s during a request; recorded as a failed request", type(e).__name__, exc_info=e)
    return (ErrorClass.BAD_RESPONSE if status else ErrorClass.CONNECT), _describe(e, "unexpected error")


def _describe(e: BaseException, fallback: str) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else fallback


def _release(response: HTTPSocketPoolResponse) -> None:
    """Give the connection back to the pool, or close it if the response was not read to its end
    (a half-read response would corrupt the next request on the same connection)."""
    if not response.message_complete:
        sock = response._sock  # geventhttpclient has no public way to discard a pooled connection
        if sock is not None:
            sock.close()
    response.release()
