"""The distributed run across machines: master, two workers and two emulator hosts, each in a network
namespace of its own (with its own hostname for the workers), joined by a private bridge."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.distributed.cluster import Cluster, assert_every_request_recorded_once
from tests.distributed.netns import Lab, NetnsUnavailable
from tests.helpers import emulator_scenario

pytestmark = pytest.mark.integration

PORT = 11434


@pytest.fixture
def lab() -> Iterator[Lab]:
    try:
        machines = Lab(tag=str(os.getpid() % 100_000))
    except NetnsUnavailable as e:
        pytest.skip(f"network namespaces unavailable: {e}")
    try:
        yield machines
    finally:
        machines.close()


def test_workers_and_hosts_on_separate_machines(lab: Lab, cluster: Cluster, emulator_factory, scenario_file) -> None:
    master_ns, master_ip = lab.add("master")
    hosts = {}
    for name in ("a", "b"):
        ns, ip = lab.add(f"host-{name}")
        emulator_factory(prefix=lab.run_in(ns), host=f"{ip}:{PORT}", preset="m1", speed=20, num_parallel=2)
        hosts[name] = f"http://{ip}:{PORT}"
    scenario = emulator_scenario([{"name": "chat", "kind": "chat", "turns": 3, "think_time": 0}],
                                 hosts=[{"name": name, "url": url} for name, url in hosts.items()],
                                 routing="round_robin", load={"users": 4, "duration": "4s", "stop_timeout": "30s"})
    port = cluster.start_master(scenario_file(scenario), 2, bind=master_ip, prefix=lab.run_in(master_ns))
    for i in (1, 2):
        ns, _ = lab.add(f"worker-{i}")
        cluster.start_worker(port, master_host=master_ip, prefix=lab.run_in(ns, hostname=f"lt-worker-{i}"))
    run = cluster.wait()

    assert_every_request_recorded_once(run, workers=2)
    assert {w["hostname"] for w in run.info["workers"]} == {"lt-worker-1", "lt-worker-2"}
    assert {h["name"]: h["url"] for h in run.info["hosts"]} == hosts
    records = run.records
    assert (records.error == "").all()
    assert set(records.host) == {"a", "b"} and set(records.worker) == {0, 1}
    assert "cannot reach them" not in run.output  # no loopback hosts, no warning
