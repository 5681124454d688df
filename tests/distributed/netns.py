"""Machines made of Linux network namespaces, for the project's own test hosts only.

Every machine is a namespace of its own with one veth interface on a private 10.x /24; a further
namespace holds the bridge that joins them. Nothing is added to the caller's own namespace, and no
route leads anywhere else: the machines reach each other and nothing more. ``close()`` kills what
still runs inside and deletes every namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

#: Seconds any one ``ip`` command may take.
IP_TIMEOUT_S = 10


class NetnsUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no ``ip``/``unshare``, or no permission)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=IP_TIMEOUT_S)


class Lab:
    """A private network of namespace machines; ``add(role)`` returns a machine's address."""

    def __init__(self, tag: str) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("needs root")
        for tool in ("ip", "unshare"):
            if shutil.which(tool) is None:
                raise NetnsUnavailable(f"no {tool!r} (Debian: apt-get install iproute2 util-linux)")
        self.tag = tag
        self.subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
        self.namespaces: list[str] = []
        self._switch = self._namespace("sw")
        try:
            _ip("-n", self._switch, "link", "add", "br0", "type", "bridge")
        except subprocess.CalledProcessError as e:
            self.close()
            raise NetnsUnavailable(f"cannot make a bridge: {e.stderr.strip()}") from None
        _ip("-n", self._switch, "link", "set", "br0", "up")

    def add(self, role: str) -> tuple[str, str]:
        """A new machine: its namespace name and its address."""
        ns = self._namespace(role)
        address = f"{self.subnet}.{len(self.namespaces) - 1}"
        port = f"p{self.tag}{len(self.namespaces)}"  # the bridge's end (interface names: 15 characters at most)
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", self._switch)
        _ip("-n", self._switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns, address

    @staticmethod
    def run_in(ns: str, hostname: str | None = None) -> Sequence[str]:
        """The command prefix that runs a program on machine ``ns`` (with a hostname of its own)."""
        prefix = ["ip", "netns", "exec", ns]
        if hostname:
            prefix += ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname]
        return prefix

    def close(self) -> None:
        """Kill whatever still runs in the namespaces, then delete them (their interfaces go with them)."""
        for ns in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=IP_TIMEOUT_S)
        self.namespaces.clear()

    def _namespace(self, role: str) -> str:
        ns = f"lt{self.tag}-{role}"
        try:
            _ip("netns", "add", ns)
        except subprocess.CalledProcessError as e:
            raise NetnsUnavailable(f"ip netns add failed: {e.stderr.strip()}") from None
        self.namespaces.append(ns)
        return ns
