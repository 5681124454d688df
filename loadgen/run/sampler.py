"""The servers' own view of saturation, sampled about once a second while a run is active.

The master (or local runner) polls every host that exposes it: llama.cpp's ``/metrics``
(``llamacpp:requests_processing`` busy, ``llamacpp:requests_deferred`` queued; ``/slots`` when metrics
are off) and the emulator's ``/_emulator/state`` (busy slots, waiters, configured slots per model).
Real Ollama exposes no busy count, so it yields no samples. Each poll appends one row per host to
``server_metrics.csv`` (flushed as written) and hands the samples, per model where the server says, to
a callback (the live view). A host that does not answer is skipped until it does.
"""

from __future__ import annotations

import csv
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import gevent

from analysis.schema import SERVER_METRICS_COLUMNS, HostInfo
from loadgen.wire.client import auth_headers

log = logging.getLogger(__name__)

INTERVAL_S: Final = 1.0
TIMEOUT_S: Final = 0.5  # per HTTP call: a slow host costs its own greenlet this much, never the loop

Kind = Literal["emulator", "llamacpp"]


@dataclass(frozen=True, slots=True)
class Sample:
    """What one server reported at ``t``; ``model`` is empty when the count covers the whole host."""

    t: float
    host: str
    model: str
    busy: int
    queued: int | None
    total_slots: int | None


def sampled_kind(info: HostInfo) -> Kind | Literal["maybe-emulator"] | None:
    """How a host can be sampled, from its probe: an Ollama that is not embedded may be an emulator."""
    if info.get("embedded") == "emulator":
        return "emulator"
    if info.get("server") == "llamacpp":
        return "llamacpp"
    if info.get("server") == "ollama":
        return "maybe-emulator"
    return None


def prometheus_values(text: str, names: Iterable[str]) -> dict[str, float]:
    """The values of unlabelled metrics ``names`` in a Prometheus text exposition."""
    wanted = set(names)
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            try:
                values[name] = float(value.split()[0])
            except (ValueError, IndexError):
                continue
    return values


def llamacpp_metrics_sample(t: float, host: str, text: str, total_slots: int | None) -> Sample | None:
    """A sample from llama.cpp ``/metrics``; ``None`` when the gauges are missing."""
    values = prometheus_values(text, ("llamacpp:requests_processing", "llamacpp:requests_deferred"))
    if "llamacpp:requests_processing" not in values:
        return None
    deferred = values.get("llamacpp:requests_deferred")
    return Sample(t, host, "", int(values["llamacpp:requests_processing"]),
                  int(deferred) if deferred is not None else None, total_slots)


def llamacpp_slots_sample(t: float, host: str, slots: Any) -> Sample | None:
    """A sample from llama.cpp ``/slots`` (a list of slots with ``is_processing``); no queue depth."""
    if not isinstance(slots, list):
        return None
    busy = sum(1 for s in slots if isinstance(s, dict) and s.get("is_processing"))
    return Sample(t, host, "", busy, None, len(slots))


def emulator_samples(t: float, host: str, state: Any) -> list[Sample]:
    """One sample per model the emulator has loaded or is holding requests for (``/_emulator/state``)."""
    models = state.get("models") if isinstance(state, dict) else None
    if not isinstance(models, dict):
        return []
    samples = []
    for name, m in models.items():
        queued = int(m.get("waiting", 0)) + int(m.get("pending", 0))
        busy = int(m.get("busy_slots", 0))
        if m.get("loaded") or m.get("loading") or busy or queued:
            samples.append(Sample(t, host, name, busy, queued, m.get("num_parallel")))
    return samples


def host_row(samples: list[Sample]) -> list[Any]:
    """One ``server_metrics.csv`` row for one host's samples of one poll: counts summed over its models."""
    queued = [s.queued for s in samples if s.queued is not None]
    slots = [s.total_slots for s in samples if s.total_slots is not None]
    return [round(samples[0].t, 3), samples[0].host, sum(s.busy for s in samples),
            sum(queued) if queued else "", sum(slots) if slots else ""]


def _get(url: str, timeout: float, headers: Mapping[str, str]) -> bytes | None:
    """The body of a GET, or ``None`` for an error status; raises ``OSError`` when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers)), timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError:
        return None


def _json(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class ServerSampler:
    """Polls the hosts of one run and writes ``server_metrics.csv``; ``start`` and ``stop`` bracket the run."""

    def __init__(self, hosts: list[HostInfo], path: Path, on_samples: Callable[[list[Sample]], None],
                 interval: float = INTERVAL_S, timeout: float = TIMEOUT_S, api_keys: Mapping[str, str] = {}) -> None:
        self._hosts = [(h, kind) for h in hosts if (kind := sampled_kind(h)) is not None and h.get("url")]
        self._headers = {h["name"]: auth_headers(api_keys.get(h["name"], "")) for h, _ in self._hosts}
        self._path = path
        self._on_samples = on_samples
        self._interval = interval
        self._timeout = timeout
        self._file: TextIO | None = None
        self._writer: Any = None
        self._greenlets: list[gevent.Greenlet] = []

    def start(self) -> None:
        self._greenlets = [gevent.spawn(self._poll_forever, info, kind) for info, kind in self._hosts]

    def stop(self) -> None:
        gevent.killall(self._greenlets, block=True)
        self._greenlets = []
        if self._file is not None:
            self._file.close()
            self._file = None

    def _poll_forever(self, info: HostInfo, kind: Kind | Literal["maybe-emulator"]) -> None:
        name, base = info["name"], info["url"].rstrip("/")
        if kind == "maybe-emulator":
            try:
                state = _json(_get(f"{base}/_emulator/state", self._timeout, self._headers[name]))
            except OSError:
                state = None
            if not isinstance(state, dict):
                return  # a real Ollama (or one that did not answer): no busy count to sample
            kind = "emulator"
        probed_slots = info.get("total_slots")  # llama.cpp's /props, read by the probe
        total_slots = probed_slots if isinstance(probed_slots, int) else None
        answering = True
        deadline = time.monotonic()
        while True:
            try:
                samples = self._poll(kind, name, base, total_slots)
            except (OSError, ValueError) as e:  # no answer, or one that is not what the server should say
                if answering:
                    log.info("server metrics: %s does not answer (%s); skipping it until it does", name, e)
                answering, samples = False, []
            else:
                if not answering:
                    log.info("server metrics: %s answers again", name)
                answering = True
            if samples:
                self._write(samples)
                self._on_samples(samples)
            deadline = max(deadline + self._interval, time.monotonic())
            gevent.sleep(deadline - time.monotonic())

    def _poll(self, kind: Kind, name: str, base: str, total_slots: int | None) -> list[Sample]:
        t, headers = time.time(), self._headers[name]
        if kind == "emulator":
            return emulator_samples(t, name, _json(_get(f"{base}/_emulator/state", self._timeout, headers)))
        body = _get(f"{base}/metrics", self._timeout, headers)
        sample = llamacpp_metrics_sample(t, name, body.decode(errors="replace"), total_slots) if body else None
        if sample is None:  # metrics off (llama-server without --metrics): count the busy slots instead
            sample = llamacpp_slots_sample(t, name, _json(_get(f"{base}/slots", self._timeout, headers)))
        return [sample] if sample is not None else []

    def _write(self, samples: list[Sample]) -> None:
        if self._file is None:
            self._file = self._path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(SERVER_METRICS_COLUMNS)
        self._writer.writerow(host_row(samples))
        self._file.flush()

