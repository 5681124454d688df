"""Record sets synthesised from DESIGN.md's two Apple M1 tables: closed rounds at concurrency 1, 2, 4, 8
of 100-token requests against a server with 1 or 4 slots.

A request takes the first free slot (FIFO); requests that run together in a wave of m all decode at the
table's per-request speed for m busy slots (1 slot: 24.6 tok/s; 4 slots: 21.7 solo, 9.8 for two, 9.9 for
three or four), with +-2 % jitter, 0.3 s prefill and 10 ms network. Each round starts 0.5 s after the last.

A test that finds these slot counts or speeds in the analysis of these records compares the analysis with the
model the records were made from (see ``test_m1.py``).
"""

from __future__ import annotations

import random
from typing import Any

from tests.analysis.helpers import served

ONE_SLOT = {1: 24.6}
FOUR_SLOTS = {1: 21.7, 2: 9.8, 3: 9.9, 4: 9.9}
PREFILL = 0.3
NET = 0.01
TOKENS = 100


def m1_rounds(
    slots: int, speeds: dict[int, float], levels: tuple[int, ...] = (1, 2, 4, 8), rounds: int = 3,
    host: str = "m1", seed: int = 7,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    t = 1_700_000_000.0
    for users in levels:
        for index in range(rounds):
            begin = t
            free = [begin] * slots
            sends = sorted(begin + rng.uniform(0, 0.005) for _ in range(users))
            ends = []
            for i, send in enumerate(sends):
                slot = min(range(slots), key=free.__getitem__)
                start = max(send + NET / 2, free[slot])
                wave = min(slots, users - (i // slots) * slots)
                decode = TOKENS / (speeds[wave] * (1 + rng.uniform(-0.02, 0.02)))
                free[slot] = start + PREFILL + decode
                row = served(send, start - send - NET / 2, PREFILL, decode, TOKENS, net=NET, host=host,
                             user_id=i, session_id=f"c{users}r{index}u{i}")
                rows.append(row)
                ends.append(row["t_end"])
            stages.append({"stage": f"c{users}/r{index + 1}", "mode": "round", "users": users,
                           "t_begin": begin, "t_end": max(ends) + 0.01})
            t = max(ends) + 0.5
    rows.sort(key=lambda row: row["t_end"])  # requests.csv is in completion order
    return rows, stages
