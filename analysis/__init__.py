"""Turn a run's records and Locust's CSVs into slot-saturation and p95-latency reports.

Pandas only, no Locust. ``analysis.schema`` (the record contract) is pure standard library so that
load-generating workers can import it without pandas.
"""
