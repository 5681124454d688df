"""Servers a run starts itself on a free loopback port and stops at its end: the emulator and llama.cpp."""

from loadgen.servers.embedded import EmbeddedServer, EmbeddedServerError, server_argv

__all__ = ["EmbeddedServer", "EmbeddedServerError", "server_argv"]
