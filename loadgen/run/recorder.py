"""One run as the master (or local runner) keeps it: its directory, records, stages and metadata.

Created when a test starts, finished when it stops: ``requests.csv`` and ``stages.csv`` grow during
the run; ``run.json`` is written at the start (marked incomplete) and rewritten at the end, with the
workers that took part, how many requests each sent and how many records arrived from it. Meanwhile
``server_metrics.csv`` is sampled from the servers and ``live`` keeps the LLM view for the web UI.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import locust
from locust.env import Environment
from locust.runners import STATE_MISSING, STATE_RUNNING, MasterRunner

from analysis.schema import REQUESTS_FILE, SERVER_METRICS_FILE, HostInfo, RunInfo, WorkerInfo
from loadgen.locust_env import runner_of
from loadgen.run import messages
from loadgen.run.live import LiveStats
from loadgen.run.locust_csv import LocustCsvFiles
from loadgen.run.messages import RecordsMessage
from loadgen.run.records import RecordStore
from loadgen.run.rundir import StageLog, new_run_id, write_run_info
from loadgen.run.sampler import ServerSampler
from loadgen.run.workers import hostname_of
from loadgen.scenario.conversations import Conversations
from loadgen.scenario.options import Slo
from loadgen.scenario.scenario import Scenario
from loadgen.scenario.workloads import ChatWorkload, Workload
from loadgen.servers.llamacpp import engine_version
from loadgen.wire.client import first_token_clock

log = logging.getLogger(__name__)

ATTRIBUTE = "llm_run"
SUITE_VERSION = "0.1.0"
#: How long the end of a run waits for the workers' last records before giving up on them.
DRAIN_TIMEOUT_S = 30.0


class RunRecorder:
    """The master's (or local runner's) side of one run."""

    def __init__(
        self,
        environment: Environment,
        scenario: Scenario,
        hosts: list[HostInfo],
        results_dir: Path,
        variant: str | None,
        run_id: str | None = None,
        api_keys: dict[str, str] | None = None,
    ) -> None:
        self.environment = environment
        self.scenario = scenario
        self.run_id = run_id or new_run_id(results_dir, scenario.name, variant)
        self.dir = results_dir / self.run_id
        self.dir.mkdir(parents=True)  # an existing directory is an error: a run never overwrites another
        if scenario.source is not None:
            (self.dir / "scenario.yaml").write_text(scenario.source.text, encoding="utf-8")
        self.store = RecordStore(self.dir / REQUESTS_FILE, self.run_id)
        self.stages = StageLog(self.dir)
        self.locust_csv = LocustCsvFiles(environment, self.dir)
        hosts = [recorded_host(host) for host in hosts]
        self.info: RunInfo = {
            "run_id": self.run_id,
            "scenario": {"name": scenario.name, "description": scenario.description,
                         "file": scenario.source.file if scenario.source else None, "sha256": scenario.sha256},
            "variant": variant,
            "swept": dict(scenario.swept),
            "started_at": time.time(),
            "ended_at": None,
            "complete": False,
            "versions": {"suite": SUITE_VERSION, "locust": locust.__version__, "python": platform.python_version()},
            "hosts": hosts,
            "workers": [],
            "load": scenario.load.model_dump(mode="json", exclude={"requests", "sessions"}),  # a replay: no schedule
            "slo": slo_thresholds(scenario.slo),
            "workloads": [workload_summary(w) for w in scenario.workloads],
        }
        for workload in scenario.workloads:
            if (dataset := read_dataset(workload)) and dataset.counts:
                log.log(logging.WARNING if dataset.counts.bad else logging.INFO, "workload %s: %s: %s",
                        workload.name, dataset.file, dataset.counts)
        runner = environment.runner
        #: Client ids of the workers connected when the run started: the run's scenario went to them.
        self.participants = frozenset(c.id for c in runner.clients.all) if isinstance(runner, MasterRunner) \
            else frozenset()
        self._vanished: dict[str, float] = {}
        self._flush_token = 0
        self._flush_replies: dict[int, int] = {}
        self._watch = gevent.spawn(self._watch_workers) if isinstance(environment.runner, MasterRunner) else None
        self.finished = False
        #: Called with every batch of this run's record rows as it arrives (the capacity search's probes).
        self.row_listeners: list[Callable[[list[list[Any]]], None]] = []
        self.live = LiveStats(self.info["started_at"])
        self.sampler = ServerSampler(hosts, self.dir / SERVER_METRICS_FILE, self.live.add_samples,
                                     api_keys=api_keys or {})
        write_run_info(self.dir, self.info)
        self.locust_csv.start()
        self.sampler.start()

    # -- records ------------------------------------------------------------------------------------

    def on_records(self, message: RecordsMessage) -> None:
        self.store.write_batch(message)
        if message["run_id"] == self.run_id:
            for listener in self.row_listeners:
                listener(message["rows"])
            try:
                self.live.add_rows(message["rows"])
            except Exception:  # the view must never cost a record: the sink would resend the written batch
                log.exception("the live LLM view could not count a batch of records (requests.csv has them)")
        if token := message["flush_token"]:
            self._flush_replies[message["worker"]] = token

    def request_flush(self) -> int:
        """Ask every worker to ship its records now; returns the token its answer will carry."""
        self._flush_token += 1
        runner_of(self.environment).send_message(messages.FLUSH, {"token": self._flush_token})
        return self._flush_token

    def flushed(self, token: int) -> bool:
        """Every live node has answered flush ``token`` (or already sent its final batch): the master holds
        every record of the requests they had finished when they were asked."""
        tallies = self.store.workers
        return all(self._flush_replies.get(w) == token or (w in tallies and tallies[w].final)
                   for w in self.live_workers())

    def drained(self, token: int) -> bool:
        """Flush ``token`` answered with nothing left in flight."""
        return self.flushed(token) and self.store.in_flight(self.live_workers()) == 0

    def wait_drained(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Flush every worker and wait until their last records have arrived (or ``timeout``)."""
        token = self.request_flush()
        deadline = time.monotonic() + timeout
        while not self.drained(token):
            if time.monotonic() > deadline:
                log.warning("gave up waiting for the workers' last records after %.0f s", timeout)
                return False
            gevent.sleep(0.1)
        return True

    def live_workers(self) -> set[int]:
        """Indexes of the nodes of this run that can still send records (the local runner is node 0)."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return {0}
        return {runner.get_worker_index(c.id) for c in runner.clients.all
                if c.id in self.participants and c.state != STATE_MISSING}

    def _watch_workers(self) -> None:
        """Note the workers that go missing. Once a newcomer that could not take part is gone, hand the
        users Locust gave it back to the run's workers (Locust itself does only with rebalancing on)."""
        runner = self.environment.runner
        assert isinstance(runner, MasterRunner)  # only a master watches workers
        while True:
            for client in list(runner.clients.all):
                if client.state != STATE_MISSING or client.id in self._vanished:
                    continue
                self._vanished[client.id] = time.time()
                if client.id in self.participants:
                    log.warning("worker %s vanished; its records so far are kept", client.id)
                elif runner.state == STATE_RUNNING:
                    runner.start(runner.target_user_count, runner.spawn_rate)
            gevent.sleep(1.0)

    # -- the end ------------------------------------------------------------------------------------

    def finish(self, drained: bool) -> None:
        """Close every file and write the final ``run.json``."""
        if self.finished:
            return
        self.finished = True
        if self._watch is not None:
            self._watch.kill()
        self.sampler.stop()
        self.stages.close()
        self.store.close()
        self.locust_csv.finish()
        self.info["ended_at"] = time.time()
        self.info["complete"] = drained
        self.info["workers"] = self._workers()
        write_run_info(self.dir, self.info)

    def _workers(self) -> list[WorkerInfo]:
        runner = self.environment.runner
        clients: dict[int, str] = {}
        if isinstance(runner, MasterRunner):
            clients = {index: client_id for client_id, index in runner.worker_indexes.items()}
        workers = []
        for index, tally in sorted(self.store.workers.items()):
            client_id = clients.get(index, "local")
            workers.append(WorkerInfo(
                index=index,
                client_id=client_id,
                hostname=hostname_of(client_id) if client_id != "local" else platform.node(),
                requests_sent=tally.sent,
                records_received=tally.received,
                vanished_at=self._vanished.get(client_id),
            ))
        return workers


def recorded_host(host: HostInfo) -> HostInfo:
    """A probed host as run.json lists it: with the clock that times its first tokens and, for an embedded
    llama.cpp server whose build names no version, the xllamacpp wheel's."""
    out: HostInfo = {**host, "first_token_clock": first_token_clock(host.get("url", ""))}
    if host.get("embedded") == "llamacpp" and not host.get("version"):
        out["version"] = engine_version()
    return out


def slo_thresholds(slo: Slo) -> dict[str, float]:
    """SLO thresholds as the analysis reads them: latencies in seconds (``e2e_p95_s``), error rate as a fraction."""
    return {(name if name == "error_rate" else f"{name}_s"): float(value) for name, value in slo if value is not None}


def workload_summary(workload: Workload) -> dict[str, Any]:
    """A workload as run.json lists it."""
    return {
        "name": workload.name,
        "kind": workload.kind,
        "endpoint": workload.endpoint,
        "models": list(workload.models or ()),
        "num_predict": workload.options.num_predict,
        "stream": workload.options.stream,
        "slo": slo_thresholds(workload.slo),
        "prefix": workload.prefix.model_dump() if workload.prefix else None,
        "conversations": ({"file": dataset.file, **dataset.counts.model_dump()}
                          if (dataset := read_dataset(workload)) and dataset.counts else None),
    }


def read_dataset(workload: Workload) -> Conversations | None:
    """A chat workload's conversation dataset, when it replays one."""
    return workload.conversations if isinstance(workload, ChatWorkload) else None


def run_of(environment: Environment) -> RunRecorder | None:
    return getattr(environment, ATTRIBUTE, None)
