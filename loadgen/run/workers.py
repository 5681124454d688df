"""Where a master's workers run, and whether they can reach the hosts the master resolved.

Locust names a worker ``<hostname>_<random hex>``. Workers on another machine cannot reach a host URL
on the master's loopback (every embedded server listens there), so the master warns when such
workers join; their requests would all fail with ``connect``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit


def hostname_of(client_id: str) -> str:
    """The machine a Locust worker runs on, from its client id."""
    return client_id.rsplit("_", 1)[0]


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unreachable_hosts_warning(host_urls: Mapping[str, str], master: str, worker: str) -> str | None:
    """A warning when a worker on machine ``worker`` is sent loopback host URLs of machine ``master``."""
    loopback = {name: url for name, url in host_urls.items() if is_loopback(url)}
    if not loopback or worker == master:
        return None
    hosts = ", ".join(f"{name} ({url})" for name, url in loopback.items())
    return (f"a worker on {worker!r} joined this master on {master!r}, but hosts {hosts} are on the master's "
            "loopback (embedded hosts always are): that worker cannot reach them and its requests will fail. "
            "Give the hosts addresses every worker can reach (--hosts or url: in the scenario).")
