"""The pure tier's guard: while a test not marked ``integration`` runs, opening a network socket or
starting a process raises ``UnmarkedIO`` (see the tiers in ``tests/conftest.py``).

Patched while the guard is on: ``connect``, ``connect_ex`` and ``bind`` of AF_INET/AF_INET6 sockets (gevent's
socket class, which ``socket.socket`` is once gevent has patched the process, and the standard library's),
ZeroMQ ``connect``/``bind`` on ``tcp://`` endpoints, ``Popen.__init__`` (gevent's and the standard library's),
``os.fork``, ``os.forkpty``, ``os.posix_spawn``, ``os.posix_spawnp``, ``os.system`` and
``_posixsubprocess.fork_exec`` (``multiprocessing``'s spawn and forkserver). Unix sockets, socket pairs and
pipes, which gevent's hub uses, are untouched.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gevent import monkey

ADVICE = "mark it integration (pytest.mark.integration) or keep it off the network and out of processes"
NETWORK = (socket.AF_INET, socket.AF_INET6)
_INHERITED = object()  # a patched class attribute that came from a base class: deleted again afterwards


class UnmarkedIO(Exception):
    """A test outside the ``integration`` tier opened a network socket or started a process. Not an
    ``OSError``: code that retries on connection errors must not swallow it."""


def _where() -> str:
    """The innermost frames outside this module: where the attempt came from."""
    frames = [f for f in traceback.extract_stack()[:-2] if f.filename != __file__]
    return "".join(traceback.format_list(frames[-4:])).rstrip()


def _socket_classes() -> list[type]:
    classes = {socket.socket, monkey.get_original("socket", "socket")}
    try:
        import zmq
    except ImportError:  # pragma: no cover - locust depends on pyzmq
        return list(classes)
    return [*classes, zmq.Socket]


def _popen_classes() -> list[type]:
    return list({subprocess.Popen, monkey.get_original("subprocess", "Popen")})


@contextmanager
def no_sockets_or_processes(test: str, tripped: list[str]) -> Iterator[None]:
    """Within the block, network sockets and new processes raise ``UnmarkedIO``; each attempt is also
    appended to ``tripped`` so that a test that catches the error still fails."""
    saved: list[tuple[Any, str, Any]] = []  # (owner, name, its own attribute or _INHERITED)

    def refuse(what: str) -> UnmarkedIO:
        message = f"an unmarked test {what}: {ADVICE}\n  test: {test}\n  from:\n{_where()}"
        tripped.append(message)
        return UnmarkedIO(message)

    def patch(owner: Any, name: str, replacement: Callable[..., Any]) -> None:
        own = vars(owner).get(name, _INHERITED) if isinstance(owner, type) else getattr(owner, name)
        saved.append((owner, name, own))
        setattr(owner, name, replacement)

    def network_socket(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: Any, address: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(self, "family", None) in NETWORK:
                raise refuse(f"opened a socket ({method} {address!r})")
            return original(self, address, *args, **kwargs)

        return guarded

    def zmq_socket(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: Any, address: Any, *args: Any, **kwargs: Any) -> Any:
            if str(address).startswith("tcp://"):
                raise refuse(f"opened a socket (zmq {method} {address!r})")
            return original(self, address, *args, **kwargs)

        return guarded

    def process(what: str, method: bool = False) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            given = args[1:] if method else args  # Popen.__init__(self, args, ...)
            command = given[0] if given else kwargs.get("args")
            raise refuse(f"started a process ({what}{f' {command!r}' if command is not None else ''})")

        return guarded

    try:
        for cls in _socket_classes():
            make = zmq_socket if cls.__module__.startswith("zmq") else network_socket
            for method in ("connect", "connect_ex", "bind"):
                original = getattr(cls, method, None)
                if original is not None:
                    patch(cls, method, make(method, original))
        for cls in _popen_classes():
            patch(cls, "__init__", process("Popen", method=True))
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
            if hasattr(os, name):
                patch(os, name, process(f"os.{name}"))
        patch(_posixsubprocess, "fork_exec", process("fork_exec"))
        yield
    finally:
        for owner, name, own in reversed(saved):
            if own is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, own)
