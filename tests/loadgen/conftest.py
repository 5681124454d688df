"""What the workload tests read from their records. (The locust fixtures are in ``tests/conftest.py``,
the helpers in ``tests/helpers.py``.)"""

from __future__ import annotations

import pandas as pd


def slot_wait(records: pd.DataFrame) -> pd.Series:
    """Ollama's slot wait: total minus load, prefill and decode (docs/records.md)."""
    return (records.server_total_s - records.server_load_s - records.server_prompt_eval_s
            - records.server_eval_s)
