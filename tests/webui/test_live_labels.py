"""Chart labels count in words: one slot is "1 slot inferred", in the live chart and in the report."""

from __future__ import annotations

import numpy as np

from analysis.charts import busy_figure
from analysis.schema import RequestRecord
from loadgen.run.live import LiveStats
from tests.analysis.helpers import served

T0 = 1_800_000_000.0


def test_one_inferred_slot_is_singular():
    live = LiveStats(T0)
    # Two requests sent together to a serial server: the second waits for the first's slot.
    live.add_rows([RequestRecord(**served(T0 + 1, wait, 0.1, 0.5)).to_row() for wait in (0.0, 0.6)])
    busy = live.busy_chart(T0 + 10)
    assert "h1 m: ≥ 1 slot inferred" in busy, busy  # a lower bound: no more than two were ever offered
    assert "slots inferred" not in busy
    figure = busy_figure(np.array([0.0, 1.0]), np.array([1.0, 0.0]), 0.0, 1, "busy")
    assert "1 slot inferred" in figure.svg and "slots inferred" not in figure.svg
