"""The load generator: Locust user classes, scenarios, clients and records.

Locust imports every ``*.py`` file in this directory whose name does not start with ``_`` as a
locustfile, so the one locustfile is ``locustfile.py`` and every helper module is ``_``-prefixed.
"""
