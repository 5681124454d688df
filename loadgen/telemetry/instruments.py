"""The live metrics of the runs of one master (or local runner), recorded on OpenTelemetry instruments.

Fed the record rows the master receives, so in a distributed run every request is counted once, from
the same rows that ``requests.csv`` gets, whichever worker sent it. The gauges (in-flight requests,
the servers' busy/queued/total slots, inferred slots, the stage going on) are read from the run in
progress whenever a reader collects. Attributes come from the scenario (workload, host, model, error
class, stage), so their cardinality is bounded by it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from analysis.schema import COLUMN_INDEX, HostInfo, row_number
from loadgen.run.live import STALE_S, slot_wait
from loadgen.telemetry import catalog as c

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation

    from loadgen.run.recorder import RunRecorder

log = logging.getLogger(__name__)

Attributes = dict[str, str | int]


def operation_name(endpoint: str) -> str:
    """The GenAI operation of a request path: ``chat`` or ``text_completion``."""
    return "chat" if "chat" in endpoint else "text_completion"


def host_attributes(host: HostInfo) -> Attributes:
    """``server.address``/``server.port``, ``gen_ai.provider.name`` and our host name for one run host."""
    url = urlsplit(host.get("url", ""))
    attributes: Attributes = {c.HOST: host.get("name", ""), c.PROVIDER: host.get("server") or host.get("api", "")}
    if url.hostname:
        attributes[c.ADDRESS] = url.hostname
        attributes[c.PORT] = url.port or (443 if url.scheme == "https" else 80)
    return attributes


class RunMetrics:
    """The instruments, and what they are recording from: the run going on (``watch``)."""

    def __init__(self, meter: Meter) -> None:
        self._run: RunRecorder | None = None
        self._hosts: dict[str, Attributes] = {}
        histograms = [c.CLIENT_DURATION, c.CLIENT_TOKENS, c.CLIENT_TTFT, c.SERVER_DURATION, c.SERVER_TTFT,
                      c.SERVER_TPOT, c.SLOT_WAIT]
        self._histogram = {m.name: meter.create_histogram(m.name, unit=m.unit, description=m.description,
                                                          explicit_bucket_boundaries_advisory=m.buckets)
                           for m in histograms}
        self._errors = meter.create_counter(c.ERRORS.name, unit=c.ERRORS.unit, description=c.ERRORS.description)
        gauges: dict[c.Metric, Callable[[], Iterator[tuple[float, Attributes]]]] = {
            c.IN_FLIGHT: self._in_flight, c.SERVER_BUSY: lambda: self._server("busy"),
            c.SERVER_QUEUED: lambda: self._server("queued"), c.SERVER_SLOTS: lambda: self._server("total_slots"),
            c.SLOTS_INFERRED: self._slots_inferred, c.STAGE_USERS: lambda: self._stage("users"),
            c.STAGE_RATE: lambda: self._stage("rate"),
        }
        for metric, observe in gauges.items():
            meter.create_observable_gauge(metric.name, callbacks=[_callback(observe)], unit=metric.unit,
                                          description=metric.description)

    def watch(self, run: RunRecorder) -> None:
        """Record ``run``'s rows from now on, and observe its gauges (until the next run is watched)."""
        self._run = run
        self._hosts = {host.get("name", ""): host_attributes(host) for host in run.info["hosts"]}
        run.row_listeners.append(self.add_rows)

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Record a batch of record rows (``RECORD_COLUMNS`` order). Never raises: a metric must not cost
        a record."""
        try:
            for row in rows:
                self._add(row)
        except Exception:
            log.exception("live metrics could not record a batch of records (requests.csv has them)")

    def _host(self, name: str) -> Attributes:
        """The attributes of the run's host ``name`` (a copy, to add to)."""
        return dict(self._hosts.get(name, {c.HOST: name}))

    def _add(self, row: Sequence[Any]) -> None:
        attributes = self._host(str(row[COLUMN_INDEX["host"]]))
        attributes.update({
            c.WORKLOAD: str(row[COLUMN_INDEX["workload"]]),
            c.MODEL: str(row[COLUMN_INDEX["model"]]),
            c.OPERATION: operation_name(str(row[COLUMN_INDEX["endpoint"]])),
        })
        value = {name: row_number(row, name) for name in (
            "t_start", "t_first_token", "t_end", "prompt_tokens", "output_tokens", "server_total_s", "server_eval_s")}
        record = self._histogram
        t_start, t_end = value["t_start"], value["t_end"]
        error = str(row[COLUMN_INDEX["error"]])
        if error:
            failed = {**attributes, c.ERROR_TYPE: error}
            if t_start is not None and t_end is not None:
                record[c.CLIENT_DURATION.name].record(t_end - t_start, failed)
            self._errors.add(1, failed)
            return
        if t_start is None or t_end is None:
            return
        record[c.CLIENT_DURATION.name].record(t_end - t_start, attributes)
        for kind, count in (("input", value["prompt_tokens"]), ("output", value["output_tokens"])):
            if count is not None:
                record[c.CLIENT_TOKENS.name].record(count, {**attributes, c.TOKEN_TYPE: kind})
        first = value["t_first_token"]
        if row[COLUMN_INDEX["stream"]] == 1 and first is not None:  # to_row writes a bool as 0 or 1
            record[c.CLIENT_TTFT.name].record(first - t_start, attributes)
        total, decode = value["server_total_s"], value["server_eval_s"]
        if total is not None:
            record[c.SERVER_DURATION.name].record(total, attributes)
            if decode is not None:
                record[c.SERVER_TTFT.name].record(total - decode, attributes)
        wait = slot_wait(row)
        if wait is not None:
            record[c.SLOT_WAIT.name].record(max(0.0, wait), attributes)
        output = value["output_tokens"]
        if decode is not None and output is not None and output >= 2:
            record[c.SERVER_TPOT.name].record(decode / (output - 1), attributes)

    # -- gauges, read from the run going on -----------------------------------------------------------

    def _in_flight(self) -> Iterator[tuple[float, Attributes]]:
        run = self._run
        if run is not None and not run.finished:
            yield float(run.store.in_flight(run.live_workers())), {}

    def _server(self, field: str) -> Iterator[tuple[float, Attributes]]:
        run = self._run
        if run is None or run.finished:
            return
        for sample in run.live.server_samples(time.time() - STALE_S):
            value = getattr(sample, field)
            if value is not None:
                attributes = self._host(sample.host)
                if sample.model:
                    attributes[c.MODEL] = sample.model
                yield float(value), attributes

    def _slots_inferred(self) -> Iterator[tuple[float, Attributes]]:
        run = self._run
        if run is None:
            return
        run.live.refresh(time.time())  # at most every few seconds; a headless run has no web UI to ask for it
        for (host, model), estimate in run.live.slot_estimates().items():
            if estimate.value is not None:
                yield float(estimate.value), {**self._host(host), c.MODEL: model,
                                              c.BOUND: "at_least" if estimate.lower_bound else "exact"}

    def _stage(self, field: str) -> Iterator[tuple[float, Attributes]]:
        run = self._run
        stage = run.stages.current if run is not None and not run.finished else None
        value = getattr(stage, field, None)
        if stage is not None and value is not None:
            yield float(value), {c.STAGE: stage.stage, c.STAGE_MODE: stage.mode}


def _callback(observe: Callable[[], Iterator[tuple[float, Attributes]]]
              ) -> Callable[[CallbackOptions], Iterator[Observation]]:
    """An observable instrument's callback over ``observe``'s (value, attributes) pairs."""
    from opentelemetry.metrics import Observation

    def callback(_options: CallbackOptions) -> Iterator[Observation]:
        for value, attributes in observe():
            yield Observation(value, attributes)

    return callback
