"""Servers a run starts itself on a free loopback port and stops at its end: the emulator, llama.cpp,
and the user's own Ollama."""

from collections.abc import Sequence

from loadgen.scenario.hosts import EmbeddedHost, OllamaHost
from loadgen.servers.embedded import EmbeddedServer, server_argv
from loadgen.servers.ollama import OllamaServer
from loadgen.servers.process import EmbeddedServerError

Server = EmbeddedServer | OllamaServer


def server_for(host: EmbeddedHost, models: Sequence[str]) -> Server:
    """The (not yet started) server of an embedded host that will serve ``models``; raises
    ``EmbeddedServerError`` when it cannot be started at all (no ``ollama`` binary)."""
    if isinstance(host, OllamaHost):
        return OllamaServer(host, models)
    return EmbeddedServer(host.name, server_argv(host))


__all__ = ["EmbeddedServer", "EmbeddedServerError", "OllamaServer", "Server", "server_for"]
