"""Real-server tests report what the hardware did (e.g. the batching gain) without asserting it: a test
records it with ``record_property("measured", text)`` and it is printed at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [f"{report.nodeid.rpartition('::')[2]}: {value}"
             for outcome in ("passed", "failed")
             for report in terminalreporter.stats.get(outcome, [])
             for name, value in getattr(report, "user_properties", ())
             if name == "measured"]
    if lines:
        terminalreporter.write_sep("-", "measured on this machine (reported, not asserted)")
        for line in lines:
            terminalreporter.write_line(line)
