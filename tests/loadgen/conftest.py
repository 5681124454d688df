"""How the workload tests end a run and read its records. (``run_locust``, ``start_locust`` and
``scenario_file`` are in ``tests/conftest.py``.)"""

from __future__ import annotations

import signal
import subprocess

import pandas as pd


def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Ctrl-C a locust process and return its output once it has exited."""
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=timeout)
    return output


def slot_wait(records: pd.DataFrame) -> pd.Series:
    """Ollama's slot wait: total minus load, prefill and decode (docs/records.md)."""
    return (records.server_total_s - records.server_load_s - records.server_prompt_eval_s
            - records.server_eval_s)

