"""Live metrics for the monitoring people already run: OpenTelemetry GenAI metrics (plus our own under
``ollama_loadtest.*``, listed in ``catalog``), recorded by the master from the records (``instruments``)
and exported over OTLP with Locust's ``--otel`` or served to Prometheus at ``/metrics`` (``export``)."""
