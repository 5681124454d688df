"""What run.json says of each host beyond the probe: the clock that timed its first tokens, and the real
version of an embedded llama.cpp server, whose build names none (``/props`` says ``b0-unknown``)."""

from __future__ import annotations

import importlib.metadata

import pytest

from analysis.schema import FirstTokenClock, HostInfo
from loadgen.run.recorder import recorded_host
from loadgen.servers import llamacpp
from loadgen.wire import client
from loadgen.wire.probe import llamacpp_version
from tests.helpers import emulator_scenario

EMBEDDED_LLAMACPP: HostInfo = {"name": "llamacpp", "url": "http://127.0.0.1:8080", "embedded": "llamacpp",
                               "server": "llamacpp", "version": ""}


@pytest.mark.parametrize(
    "kernel_stamps, url, clock",
    [
        (True, "http://127.0.0.1:11434", FirstTokenClock.KERNEL_RECEIVE),
        (True, "https://llm.example:443", FirstTokenClock.CLIENT_READ),  # TLS reads bypass the stamped recv
        (False, "http://127.0.0.1:11434", FirstTokenClock.CLIENT_READ),  # no SO_TIMESTAMPNS on this system
    ],
    ids=["plain-http", "tls", "no-so-timestampns"],
)
def test_run_json_says_which_clock_timed_a_hosts_first_tokens(monkeypatch, kernel_stamps, url, clock):
    monkeypatch.setattr(client, "kernel_receive_times", lambda: kernel_stamps)
    assert recorded_host({"name": "h", "url": url})["first_token_clock"] == clock
    assert client.HostConnection(url, 1, 1).stamped is (clock is FirstTokenClock.KERNEL_RECEIVE)


@pytest.mark.parametrize(
    "build_info, version",
    [("b6123-1a2b3c4d", "b6123-1a2b3c4d"), ("b0-unknown", ""), (None, ""), ("", "")],
    ids=["real-build", "placeholder", "none", "empty"],
)
def test_llamacpp_build_info_is_a_version_only_when_it_names_a_build(build_info, version):
    assert llamacpp_version(build_info) == version


def test_an_embedded_llamacpp_is_named_by_its_xllamacpp_wheel(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", {"xllamacpp": "2026.10.11549"}.__getitem__)
    assert llamacpp.engine_version() == "xllamacpp 2026.10.11549"
    assert recorded_host(EMBEDDED_LLAMACPP)["version"] == "xllamacpp 2026.10.11549"


def test_a_version_the_server_reported_is_kept(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2026.10.11549")
    assert recorded_host({**EMBEDDED_LLAMACPP, "version": "b6123-1a2b3c4d"})["version"] == "b6123-1a2b3c4d"
    external = {"name": "ext", "url": "http://10.0.0.2:8080", "server": "llamacpp", "version": ""}
    assert recorded_host(external)["version"] == ""  # another machine's engine: the wheel here says nothing of it


def test_without_the_wheel_the_embedded_version_stays_unknown(monkeypatch):
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert recorded_host(EMBEDDED_LLAMACPP)["version"] == ""


@pytest.mark.integration
@pytest.mark.skipif(not client.kernel_receive_times(), reason="this system has no SO_TIMESTAMPNS")
def test_a_run_records_its_hosts_first_token_clock(run_locust):
    scenario = emulator_scenario([{"name": "chat", "kind": "chat", "think_time": 0}],
                                 load={"users": 1, "duration": "1s", "stop_timeout": "20s"})
    (host,) = run_locust(scenario).info["hosts"]
    assert host["first_token_clock"] == "kernel_receive"
