"""Which worker machines can reach the hosts the master resolved (pure functions, no processes)."""

from __future__ import annotations

import pytest

from loadgen.run.workers import hostname_of, is_loopback, unreachable_hosts_warning


def test_hostname_is_the_client_id_before_its_last_underscore():
    assert hostname_of("box_1_0123abcd") == "box_1"


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:41000", True),
    ("http://127.3.2.1", True),
    ("http://[::1]:11434", True),
    ("http://localhost:11434/v1", True),
    ("http://10.0.0.7:11434", False),
    ("http://llm:11434", False),
    ("https://ollama.example.com", False),
])
def test_loopback_urls(url: str, loopback: bool):
    assert is_loopback(url) is loopback


def test_a_worker_on_another_machine_is_warned_about_loopback_hosts_only():
    hosts = {"emu": "http://127.0.0.1:41000", "gpu": "http://10.0.0.7:11434"}
    warning = unreachable_hosts_warning(hosts, master="box-a", worker="box-b")
    assert warning is not None and "emu (http://127.0.0.1:41000)" in warning and "gpu" not in warning
    assert unreachable_hosts_warning(hosts, master="box-a", worker="box-a") is None
    assert unreachable_hosts_warning({"gpu": "http://10.0.0.7:11434"}, master="box-a", worker="box-b") is None
