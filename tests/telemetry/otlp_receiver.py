"""An OTLP/HTTP metrics receiver on a loopback port, in the test's own process: it decodes every export
(protobuf, as the OpenTelemetry collector would) and keeps the data points."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest


@dataclass
class Export:
    """One metric of one export: its scope, name, unit, type and data points."""

    resource: dict[str, Any]
    scope: str
    name: str
    unit: str
    kind: str  # histogram, sum, gauge
    points: list[Any]


@dataclass
class Receiver:
    url: str
    exports: list[list[Export]] = field(default_factory=list)  # one list per POST, in arrival order

    def last(self, name: str) -> Export | None:
        """The latest export of metric ``name`` (cumulative temporality: it holds the totals so far)."""
        for batch in reversed(self.exports):
            for export in batch:
                if export.name == name:
                    return export
        return None


def attributes(key_values: Any) -> dict[str, Any]:
    """OTLP KeyValue list as a dict (strings, ints, doubles, bools)."""
    out = {}
    for kv in key_values:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """Serve ``POST /v1/metrics`` on 127.0.0.1 until the block ends."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportMetricsServiceRequest()
            request.ParseFromString(body)
            batch = []
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        kind = metric.WhichOneof("data")
                        batch.append(Export(resource, scope_metrics.scope.name, metric.name, metric.unit, kind,
                                            list(getattr(metric, kind).data_points)))
            receiver.exports.append(batch)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
