"""Recorded traces for ``load: {shape: replay}``: readers of each format (``requests_csv``, ``azure``,
``mooncake``), the schedule they make (``schedule``) and the prompt text of a recorded size (``text``).
Pure: no Locust, no gevent; the files are read once, on the master, and the schedule ships to workers.
"""
