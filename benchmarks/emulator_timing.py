"""Timing benchmark: how closely does the emulator's clock follow its own speed model?

The emulator's tests assert on what it modelled and recorded (which requests decoded together, which
waited for which, the modelled decode time of each); this script measures the rest: the wall clock against
that model, on the machine as busy as it is. For each slot count it starts the emulator (the m1 preset at
``--speed``, with ``--trace-file``) and, for each concurrency level, ``--rounds`` times: loads the model
(a load of ``--gate`` seconds) and sends the level's ``/api/generate`` requests while it loads, so that
those with a slot reach the engine together and decode in lockstep, the way the modelled times assume;
then unloads it. From the trace it reports, per slot count and level:

- per request, measured over modelled: ``eval_duration`` over the modelled decode, ``prompt_eval_duration``
  over the modelled prefill, and the generation (prefill start to last token) over prefill + decode. Steps
  run on deadlines, so a late step delays the ones after it but lag never accumulates, and a generation is
  never shorter than modelled (its ratio is at least 1);
- tok/s per request (``eval_count`` over the decode time) and in aggregate (the round's tokens over its
  span, first prefill start to last token), measured and modelled;
- each model load: ``load_duration`` over the modelled pre-flight + load.

Usage: ``python benchmarks/emulator_timing.py [--slots 1,4] [--levels 1,2,4,8] [--rounds 3] [--speed 20]``
Prints Markdown tables. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

import harness

from emulator.presets import get_preset

MODEL = "llama3.2"
PROMPTS = [f"Prompt number {i}: explain how a queue of requests behaves under load." for i in range(8)]
WAIT_S = 60.0  # the longest any one wait may take before the benchmark gives up


# --- talking to the emulator ------------------------------------------------------------------------
def post(url: str, body: dict[str, Any], request_id: str = "") -> dict[str, Any]:
    """POST ``body`` to ``/api/generate``; the answer."""
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    request = urllib.request.Request(url + "/api/generate", json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        return json.loads(response.read())


def model_state(url: str) -> dict[str, Any]:
    """``/_emulator/state`` for the model."""
    with urllib.request.urlopen(url + "/_emulator/state", timeout=WAIT_S) as response:
        return json.loads(response.read())["models"][MODEL + ":latest"]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def gated_round(url: str, request_ids: list[str], tokens: int) -> None:
    """Load the model, send one request per id while it loads, wait for all; then unload the model."""
    with ThreadPoolExecutor(len(request_ids) + 1) as pool:
        load = pool.submit(post, url, {"model": MODEL, "prompt": ""}, f"load {request_ids[0]}")
        wait_for(lambda: model_state(url)["loading"], "the load to start")
        bodies = [{"model": MODEL, "prompt": PROMPTS[i % len(PROMPTS)], "stream": False,
                   "options": {"num_predict": tokens}} for i in range(len(request_ids))]  # fmt: skip
        list(pool.map(post, [url] * len(request_ids), bodies, request_ids))
        load.result()
    post(url, {"model": MODEL, "keep_alive": 0})
    wait_for(lambda: "num_parallel" not in model_state(url), "the unload")  # the runner is gone


# --- figures ------------------------------------------------------------------------------------------
@dataclass
class Level:
    """One slot count and concurrency level: its requests' trace lines, round by round, and its loads'."""

    slots: int
    concurrent: int
    rounds: list[list[dict[str, Any]]]
    loads: list[dict[str, Any]]

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [row for round_rows in self.rounds for row in round_rows]

    @property
    def gated_rounds(self) -> list[list[dict[str, Any]]]:
        """Rounds whose requests all arrived during the load (the others did not start together)."""
        return [rows for rows in self.rounds
                if max(r["received"] for r in rows) < min(r["runner_acquired"] for r in rows)]  # fmt: skip


def generation_s(row: dict[str, Any]) -> float:
    """Measured: the engine step that began the prefill to the one that emitted the last token."""
    return row["last_token"] - row["prefill_start"]


def modelled_generation_s(row: dict[str, Any]) -> float:
    return row["model_prefill_s"] + row["model_decode_s"]


def span_s(rows: list[dict[str, Any]], modelled: bool) -> float:
    """A gated round's span: first prefill start to last token, measured or modelled. Its batches decode one
    after another (those of one batch share their steps, so one member's modelled times are the batch's)."""
    if not modelled:
        return max(r["last_token"] for r in rows) - min(r["prefill_start"] for r in rows)
    batches = {r["prefill_end"]: r for r in rows}.values()
    return sum(modelled_generation_s(r) for r in batches)


def p50_p99(values: list[float], digits: int = 3) -> str:
    return f"{harness.pct(values, 50):.{digits}f} / {harness.pct(values, 99):.{digits}f}"


def timing_row(level: Level, rounds: int) -> list[object]:
    rows = level.requests
    return [
        level.slots, level.concurrent, len(rows), f"{len(level.gated_rounds)}/{rounds}",
        p50_p99([r["eval_s"] / r["model_decode_s"] for r in rows]),
        p50_p99([r["prompt_eval_s"] / r["model_prefill_s"] for r in rows]),
        p50_p99([generation_s(r) / modelled_generation_s(r) for r in rows]),
    ]  # fmt: skip


def rate_row(level: Level) -> list[object]:
    rows, gated = level.requests, level.gated_rounds
    per_request = mean(r["eval_count"] / r["eval_s"] for r in rows)
    per_request_model = mean(r["eval_count"] / r["model_decode_s"] for r in rows)
    cells: list[object] = [level.slots, level.concurrent, f"{per_request:.1f}", f"{per_request_model:.1f}",
                           f"{per_request / per_request_model:.3f}"]  # fmt: skip
    if not gated:
        return [*cells, "n/a", "n/a", "n/a"]
    aggregate = mean(sum(r["eval_count"] for r in g) / span_s(g, modelled=False) for g in gated)
    aggregate_model = mean(sum(r["eval_count"] for r in g) / span_s(g, modelled=True) for g in gated)
    return [*cells, f"{aggregate:.1f}", f"{aggregate_model:.1f}", f"{aggregate / aggregate_model:.3f}"]


def load_row(slots: int, loads: list[dict[str, Any]], modelled_s: float) -> list[object]:
    measured = [r["runner_acquired"] - r["handler_start"] for r in loads]  # the load form's load_duration
    return [slots, len(loads), p50_p99(measured, 4), f"{modelled_s:.4f}", p50_p99([m / modelled_s for m in measured])]


# --- the run ------------------------------------------------------------------------------------------
def run_slots(slots: int, args: argparse.Namespace) -> list[Level]:
    """Every level and round against one emulator with ``slots`` slots; the levels' trace lines."""
    trace = Path(tempfile.NamedTemporaryFile(prefix="emulator-timing-", suffix=".jsonl", delete=False).name)
    server = harness.start_emulator("--preset", "m1", "--speed", str(args.speed), "--num-parallel", str(slots),
                                    "--seed", "1", "--tune", f"load_s={args.gate * args.speed}",
                                    "--trace-file", str(trace))  # fmt: skip
    plan: dict[int, list[list[str]]] = {}
    try:
        for n in args.levels:
            plan[n] = [[f"s{slots} n{n} r{k} q{i}" for i in range(n)] for k in range(args.rounds)]
            for request_ids in plan[n]:
                gated_round(server.url, request_ids, args.tokens)
    finally:
        server.stop()  # SIGTERM: the trace is flushed
    by_id = harness.trace_by_id(harness.read_trace(trace))
    trace.unlink()
    return [Level(slots, n, [[by_id[rid] for rid in ids] for ids in rounds],
                  [by_id[f"load {ids[0]}"] for ids in rounds]) for n, rounds in plan.items()]  # fmt: skip


def comma_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=comma_ints, default=[1, 4], help="slot counts (comma list)")
    parser.add_argument("--levels", type=comma_ints, default=[1, 2, 4, 8], help="concurrent requests (comma list)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level")
    parser.add_argument("--tokens", type=int, default=100, help="output tokens per request")
    parser.add_argument("--speed", type=float, default=20.0, help="the emulator's --speed")
    parser.add_argument("--gate", type=float, default=1.0, help="seconds each round's model load lasts")
    args = parser.parse_args()
    preset = get_preset("m1")
    modelled_load_s = preset.fit_s / args.speed + args.gate
    results = {slots: run_slots(slots, args) for slots in args.slots}
    levels = [level for per_slots in results.values() for level in per_slots]
    print(f"\nm1 preset at speed {args.speed:g}: {args.tokens} output tokens a request, {args.rounds} round(s) a "
          f"level, each sent during a {args.gate:g} s load; {harness.machine()}\n")  # fmt: skip
    print(harness.markdown_table(
        ["slots", "concurrent", "requests", "rounds gated", "eval_duration / modelled p50 / p99",
         "prompt_eval_duration / modelled p50 / p99", "generation / modelled p50 / p99"],
        [timing_row(level, args.rounds) for level in levels]))  # fmt: skip
    print()
    print(harness.markdown_table(
        ["slots", "concurrent", "tok/s per request", "modelled", "per-request ratio", "aggregate tok/s",
         "modelled aggregate", "aggregate ratio"],
        [rate_row(level) for level in levels]))  # fmt: skip
    print()
    print(harness.markdown_table(
        ["slots", "loads", "load_duration s p50 / p99", "modelled s", "load / modelled p50 / p99"],
        [load_row(slots, [row for level in per_slots for row in level.loads], modelled_load_s)
         for slots, per_slots in results.items()]))  # fmt: skip


if __name__ == "__main__":
    main()
