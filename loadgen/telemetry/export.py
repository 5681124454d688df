"""Where the live metrics go: OTLP through Locust's own ``--otel`` provider, and a Prometheus ``/metrics``
served by the master (under the web UI, and on ``--metrics-port`` for headless runs).

Only the master (or a local runner) records, from the records every worker ships to it, so nothing is
counted twice. Without the ``[otel]`` extra the suite runs as before: ``--metrics-port`` is refused in
one line saying what to install, and the web UI's ``/metrics`` answers the same.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import gevent
from flask import Blueprint, Response
from locust.env import Environment

from loadgen.locust_env import SuiteOptions
from loadgen.run.recorder import SUITE_VERSION
from loadgen.telemetry.instruments import RunMetrics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

INSTALL_HINT: Final = "live metrics need the [otel] extra: pip install 'ollama-loadtest[otel]'"
METER_NAME: Final = "ollama_loadtest"
#: How long the end of a headless run waits for Prometheus to scrape its final numbers, when it has not
#: seen two scrapes to learn the interval from.
LAST_SCRAPE_WAIT_S: Final = 65.0


class TelemetryError(Exception):
    """The live export cannot start (the extra is missing, the port is taken): one line for the user."""


@dataclass(slots=True, eq=False)  # hashable: the registry keys its collectors
class ScrapeWatch:
    """A collector that yields nothing and notes when Prometheus scraped (monotonic seconds)."""

    scrapes: list[float] = field(default_factory=list)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self.scrapes[:] = [*self.scrapes[-1:], time.monotonic()]
        return []

    def wait_for_scrape_after(self, since: float) -> bool:
        """Wait until a scrape after ``since`` (monotonic), at most one and a half scrape intervals; no
        wait when nobody scrapes. Returns whether one came."""
        if not self.scrapes:
            return True
        learnt = len(self.scrapes) == 2
        limit = 1.5 * (self.scrapes[1] - self.scrapes[0]) + 1.0 if learnt else LAST_SCRAPE_WAIT_S
        deadline = time.monotonic() + min(limit, 2 * LAST_SCRAPE_WAIT_S)
        log.info("waiting up to %.0f s for a last scrape of /metrics", deadline - time.monotonic())
        while self.scrapes[-1] <= since:
            if time.monotonic() > deadline:
                log.warning("no scrape of /metrics came after the run ended: Prometheus lacks its last numbers")
                return False
            gevent.sleep(0.1)
        return True


@dataclass(slots=True)
class Telemetry:
    """The master's live export: the instruments, and the scrape watch of ``--metrics-port``."""

    metrics: RunMetrics
    watch: ScrapeWatch | None  # set when /metrics is served on its own port


def start_telemetry(environment: Environment, options: SuiteOptions) -> Telemetry | None:
    """Set up the export this process asks for (``--metrics-port``, the web UI, Locust's ``--otel``);
    ``None`` when there is nowhere to export to."""
    metrics_port, bind = options.metrics_port, options.web_host
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        if metrics_port:
            raise TelemetryError(f"--metrics-port: {INSTALL_HINT}") from None
        if environment.web_ui is not None:
            _serve_on_web_ui(environment, None, options.web_base_path)
        return None
    otel_provider = metrics.get_meter_provider()
    locust_otel = isinstance(otel_provider, MeterProvider)  # Locust's --otel set one up
    prometheus = bool(metrics_port) or environment.web_ui is not None
    if not (locust_otel or prometheus):
        return None
    registry, watch = None, None
    if prometheus:
        registry = CollectorRegistry()
        reader = PrometheusMetricReader(registry=registry)
        if isinstance(otel_provider, MeterProvider):  # Locust's: /metrics joins its --otel export
            otel_provider.add_metric_reader(reader)
        else:
            service = os.environ.get("OTEL_SERVICE_NAME", "ollama-loadtest")
            otel_provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": service}))
    if metrics_port:
        assert registry is not None
        watch = ScrapeWatch()
        registry.register(watch)  # a collector is anything with collect()
        try:
            start_http_server(metrics_port, addr=bind or "0.0.0.0", registry=registry)
        except OSError as e:
            raise TelemetryError(f"--metrics-port {metrics_port}: cannot listen on it ({e.strerror})") from None
        log.info("serving live metrics for Prometheus at http://%s:%d/metrics", bind or "0.0.0.0", metrics_port)
    if environment.web_ui is not None:
        _serve_on_web_ui(environment, registry, options.web_base_path)
    return Telemetry(RunMetrics(otel_provider.get_meter(METER_NAME, SUITE_VERSION)), watch)


def _serve_on_web_ui(environment: Environment, registry: CollectorRegistry | None, base_path: str) -> None:
    """``/metrics`` under the web UI's base path (behind its login, when it has one)."""
    ui = environment.web_ui
    assert ui is not None and ui.app is not None
    routes = Blueprint("llm_metrics", __name__)

    @routes.route("/metrics")
    @ui.auth_required_if_enabled
    def exposition() -> Response:
        if registry is None:
            return Response(INSTALL_HINT + "\n", status=501, mimetype="text/plain")
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    ui.app.register_blueprint(routes, url_prefix=base_path or None)
